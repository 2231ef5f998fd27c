//! Writing a monolithicSparse VMDK, as VMware Workstation and `qemu-img` make them: the sparse
//! extent header, the embedded descriptor, the redundant and the main grain directory each with
//! every grain table (their size known from the disk's), then each 64 KiB grain that holds data
//! in disk order from the next grain boundary on.

use super::SPARSE_MAGIC;
use crate::bytes::{uuid, Seed};
use crate::container::blocks::{whole_sectors, BlockLayout};

const GRAIN_SECTORS: u64 = 128;
const GRAIN: u64 = GRAIN_SECTORS * 512;
/// Entries in a grain table: 512, as every VMware writer uses.
const PER_TABLE: u64 = 512;
const DESCRIPTOR_SECTOR: u64 = 1;
const DESCRIPTOR_SECTORS: u64 = 20;
/// Header flags: the newline-detection characters are valid; a redundant grain directory.
const FLAGS: u32 = 1 | 2;
/// Sector numbers are 32-bit.
const MAX_SECTORS: u64 = u32::MAX as u64;

pub struct Layout {
    size: u64,
    /// The extent's file name, which the descriptor gives.
    name: String,
    content_id: u32,
}

impl Layout {
    /// A disk of `size` bytes in a file called `name`; its content ID from `seed` when
    /// reproducible.
    pub fn new(size: u64, name: &str, seed: Option<&Seed>) -> Result<Layout, String> {
        whole_sectors("a VMDK", size)?;
        let id = uuid(seed, "VMDK content");
        let layout = Layout {
            size,
            name: name.replace('"', "_"),
            content_id: u32::from_le_bytes(id[..4].try_into().expect("4 bytes")),
        };
        match layout.data_at() / 512 + layout.size.div_ceil(GRAIN) * GRAIN_SECTORS > MAX_SECTORS {
            true => Err(format!(
                "a disk of {size} bytes: a sparse VMDK holds at most 2 TiB"
            )),
            false => Ok(layout),
        }
    }

    fn tables(&self) -> u64 {
        self.size.div_ceil(GRAIN).div_ceil(PER_TABLE)
    }

    /// Sectors of a grain directory, and of one directory with its tables.
    fn directory_sectors(&self) -> u64 {
        (4 * self.tables()).div_ceil(512)
    }

    fn directory_and_tables(&self) -> u64 {
        self.directory_sectors() + self.tables() * (4 * PER_TABLE / 512)
    }

    /// The redundant directory's sector, then the main one's.
    fn directories(&self) -> [u64; 2] {
        let first = DESCRIPTOR_SECTOR + DESCRIPTOR_SECTORS;
        [first, first + self.directory_and_tables()]
    }

    fn header(&self) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        let mut put = |at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
        put(0, SPARSE_MAGIC);
        put(4, &1u32.to_le_bytes());
        put(8, &FLAGS.to_le_bytes());
        put(12, &(self.size / 512).to_le_bytes());
        put(20, &GRAIN_SECTORS.to_le_bytes());
        put(28, &DESCRIPTOR_SECTOR.to_le_bytes());
        put(36, &DESCRIPTOR_SECTORS.to_le_bytes());
        put(44, &(PER_TABLE as u32).to_le_bytes());
        let [redundant, main] = self.directories();
        put(48, &redundant.to_le_bytes());
        put(56, &main.to_le_bytes());
        put(64, &(self.data_at() / 512).to_le_bytes());
        put(73, b"\n \r\n");
        h
    }

    fn descriptor(&self) -> Vec<u8> {
        let sectors = self.size / 512;
        // The BIOS geometry VMware gives an IDE disk: 16 heads, 63 sectors a track.
        let cylinders = (sectors / (16 * 63)).clamp(1, 16_383);
        let text = format!(
            "# Disk DescriptorFile\nversion=1\nCID={:08x}\nparentCID=ffffffff\n\
             createType=\"monolithicSparse\"\n\n# Extent description\nRW {sectors} SPARSE \"{}\"\n\n\
             # The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"4\"\n\
             ddb.geometry.cylinders = \"{cylinders}\"\nddb.geometry.heads = \"16\"\n\
             ddb.geometry.sectors = \"63\"\nddb.adapterType = \"ide\"\n",
            self.content_id, self.name
        );
        let mut bytes = text.into_bytes();
        bytes.resize((DESCRIPTOR_SECTORS * 512) as usize, 0);
        bytes
    }
}

impl BlockLayout for Layout {
    fn block_size(&self) -> u64 {
        GRAIN
    }

    fn data_at(&self) -> u64 {
        ((self.directories()[1] + self.directory_and_tables()) * 512).next_multiple_of(GRAIN)
    }

    /// Each directory lists its own copy of every table, allocated or not, as VMware's do.
    fn metadata(&self, stored: &[u64]) -> Vec<(u64, Vec<u8>)> {
        let mut tables = vec![0u8; (self.tables() * PER_TABLE * 4) as usize];
        for (k, &number) in (0..).zip(stored) {
            let sector = (self.stored_at(k) / 512) as u32;
            tables[4 * number as usize..][..4].copy_from_slice(&sector.to_le_bytes());
        }
        let mut pieces = vec![
            (0, self.header()),
            (DESCRIPTOR_SECTOR * 512, self.descriptor()),
        ];
        for at in self.directories() {
            let tables_at = at + self.directory_sectors();
            let directory: Vec<u8> = (0..self.tables())
                .flat_map(|t| ((tables_at + t * 4 * PER_TABLE / 512) as u32).to_le_bytes())
                .collect();
            pieces.push((at * 512, directory));
            pieces.push((tables_at * 512, tables.clone()));
        }
        pieces
    }
}
