//! The APFS container (Apple File System Reference, "Container"): the container superblock to
//! trust is the newest one in the checkpoint area whose objects all check, and its object map
//! turns the volumes' virtual ids into blocks.

use super::block::{bad, Blocks, CHECKPOINT_MAP, FS, NX_SUPERBLOCK, SPACEMAN};
use super::btree::Omap;
use super::crypto::Keylocker;
use crate::bytes::{le32, le64};
use crate::io::ReadAt;
use std::io;
use std::sync::Arc;

const CHUNK_INFO_BLOCK: u32 = 0x07;
const CIB_ADDRESS_BLOCK: u32 = 0x08;

/// A container declares up to 100 volumes.
const MAX_VOLUMES: usize = 100;
/// A checkpoint descriptor area is a few blocks; more is damage (the bound keeps a scan short).
const MAX_DESCRIPTOR_BLOCKS: u64 = 1 << 16;

/// The container at the checkpoint dimg reads.
pub(super) struct Container {
    pub blocks: Blocks,
    /// The chosen superblock's transaction: every object map lookup is as of it.
    pub xid: u64,
    pub omap: Omap,
    /// The virtual object ids of the volume superblocks, in the container's order.
    pub volume_oids: Vec<u64>,
    /// The space manager's block, when it could be read.
    spaceman: Option<Vec<u8>>,
    /// The checkpoint's ephemeral objects, as its maps place them: (id, type, block).
    pub ephemeral: Vec<(u64, u32, u64)>,
    /// Newer checkpoints passed over because an object of theirs failed, and why.
    pub passed_over: Vec<String>,
    /// Where the container keybag is and what decrypts it, for encrypted volumes.
    pub keylocker: Keylocker,
    /// The chosen container superblock.
    pub superblock: Vec<u8>,
}

impl Container {
    pub fn open(disk: Arc<dyn ReadAt>) -> io::Result<Container> {
        let mut head = vec![0u8; 4096];
        if disk.size() < head.len() as u64 {
            return Err(bad(
                "APFS container superblock",
                0,
                "the image is too short",
            ));
        }
        disk.read_exact_at(0, &mut head)?;
        let size = u64::from(le32(&head, 36));
        if !(4096..=65536).contains(&size) || !size.is_power_of_two() {
            return Err(bad(
                "APFS container superblock",
                36,
                format!("block size {size} is not a power of two from 4096 to 65536"),
            ));
        }
        let blocks = Blocks::new(disk, size, le64(&head, 40));
        let mut candidates = Vec::new();
        // Block 0 is a copy written at some checkpoint; the descriptor area holds the newest.
        if let Ok(b) = blocks.object(0, NX_SUPERBLOCK, "APFS container superblock") {
            candidates.push(b);
        }
        // The descriptor area, read once: its superblocks, and where the checkpoint maps
        // written with each lie.
        let area = descriptor_area(&blocks, &head)?;
        candidates.extend(area.superblocks);
        candidates.sort_by_key(|b| std::cmp::Reverse(le64(b, 16)));
        candidates.dedup_by_key(|b| le64(b, 16));
        if candidates.is_empty() {
            return Err(bad(
                "APFS checkpoint",
                0,
                "no container superblock passes its checksum",
            ));
        }
        let mut passed_over = Vec::new();
        for sb in candidates {
            let xid = le64(&sb, 16);
            match Self::at_checkpoint(&blocks, &sb) {
                Ok((omap, volume_oids)) => {
                    let ephemeral = ephemeral_objects(&blocks, &sb, &area.maps);
                    let spaceman = ephemeral
                        .as_ref()
                        .map_err(|e| bad("APFS space manager", 0, e.to_string()))
                        .and_then(|e| space_manager(&blocks, &sb, e))
                        .ok();
                    let keylocker = Keylocker {
                        uuid: sb[72..88].try_into().expect("16 bytes"),
                        range: (le64(&sb, 1296), le64(&sb, 1304)),
                        flags: le64(&sb, 1264),
                    };
                    return Ok(Container {
                        keylocker,
                        superblock: sb,
                        blocks,
                        xid,
                        omap,
                        volume_oids,
                        spaceman,
                        ephemeral: ephemeral.unwrap_or_default(),
                        passed_over,
                    });
                }
                Err(e) => passed_over.push(format!("checkpoint {xid}: {e}")),
            }
        }
        Err(bad(
            "APFS checkpoint",
            0,
            format!("no checkpoint can be read ({})", passed_over.join("; ")),
        ))
    }

    /// The object map and volume superblocks a checkpoint's superblock names, all checked.
    fn at_checkpoint(blocks: &Blocks, sb: &[u8]) -> io::Result<(Omap, Vec<u64>)> {
        let xid = le64(sb, 16);
        let omap = Omap::open(blocks, le64(sb, 160), "APFS container object map")?;
        let volume_oids: Vec<u64> = (0..MAX_VOLUMES)
            .map(|i| le64(sb, 184 + 8 * i))
            .filter(|&oid| oid != 0)
            .collect();
        for &oid in &volume_oids {
            let paddr = omap.lookup(blocks, oid, xid)?.ok_or_else(|| {
                bad(
                    "APFS container object map",
                    0,
                    format!("has no block for volume object {oid}"),
                )
            })?;
            blocks.object(paddr, FS, "APFS volume superblock")?;
        }
        Ok((omap, volume_oids))
    }
}

/// What the checkpoint descriptor area holds that passes its checksum.
struct DescriptorArea {
    superblocks: Vec<Vec<u8>>,
    /// Checkpoint maps: (block, transaction).
    maps: Vec<(u64, u64)>,
}

fn descriptor_area(blocks: &Blocks, head: &[u8]) -> io::Result<DescriptorArea> {
    let count = u64::from(le32(head, 104));
    if count & (1 << 31) != 0 {
        return Err(bad(
            "APFS checkpoint descriptor area",
            104,
            "is a tree of blocks, which dimg does not read (it is contiguous on every Mac-made container)",
        ));
    }
    let base = le64(head, 112);
    let mut area = DescriptorArea {
        superblocks: Vec::new(),
        maps: Vec::new(),
    };
    // Only blocks the image holds: past its end every block would be an error to build.
    let present = (blocks.disk().size() / blocks.size).min(blocks.count);
    let end = base
        .saturating_add(count.min(MAX_DESCRIPTOR_BLOCKS))
        .min(present);
    for paddr in base..end {
        match blocks.checked(paddr, "APFS checkpoint") {
            // A Mac keeps a handful; the cap holds a claimed area of 65,536 to 4 MiB of them.
            Ok((b, NX_SUPERBLOCK)) if &b[32..36] == b"NXSB" && area.superblocks.len() < 64 => {
                area.superblocks.push(b)
            }
            Ok((b, CHECKPOINT_MAP)) => area.maps.push((paddr, le64(&b, 16))),
            _ => {}
        }
    }
    Ok(area)
}

/// The ephemeral objects the checkpoint maps written with superblock `sb` place: (id, type,
/// block), each one block (as on every container seen; a larger one is refused).
fn ephemeral_objects(
    blocks: &Blocks,
    sb: &[u8],
    maps: &[(u64, u64)],
) -> io::Result<Vec<(u64, u32, u64)>> {
    let xid = le64(sb, 16);
    let mut found = Vec::new();
    for &(paddr, _) in maps.iter().filter(|&&(_, x)| x == xid) {
        let map = blocks.object(paddr, CHECKPOINT_MAP, "APFS checkpoint map")?;
        let entries = (le32(&map, 36) as usize).min((map.len() - 40) / 40);
        for e in map[40..].chunks_exact(40).take(entries) {
            if u64::from(le32(e, 8)) != blocks.size {
                return Err(bad(
                    "APFS checkpoint map",
                    paddr * blocks.size,
                    format!(
                        "places an object of {} bytes: dimg reads one-block ephemeral objects",
                        le32(e, 8)
                    ),
                ));
            }
            found.push((le64(e, 24), le32(e, 0) & 0xFFFF, le64(e, 32)));
        }
    }
    Ok(found)
}

/// The space manager: the ephemeral object the superblock names.
fn space_manager(blocks: &Blocks, sb: &[u8], ephemeral: &[(u64, u32, u64)]) -> io::Result<Vec<u8>> {
    let spaceman = le64(sb, 152);
    match ephemeral.iter().find(|e| e.0 == spaceman) {
        Some(&(_, _, paddr)) => blocks.object(paddr, SPACEMAN, "APFS space manager"),
        None => Err(bad("APFS space manager", 0, "is in no checkpoint map")),
    }
}

impl Container {
    /// Blocks free, as the space manager counts them (`sm_dev[SD_MAIN].sm_free_count`).
    pub fn free_blocks(&self) -> Option<u64> {
        self.spaceman.as_ref().map(|s| le64(s, 72))
    }

    /// The ranges of blocks the space manager's bitmaps mark free, as byte ranges.
    pub fn free_extents(&self) -> io::Result<Vec<(u64, u64)>> {
        let size = self.blocks.size;
        let mut free: Vec<(u64, u64)> = Vec::new();
        let mut add = |block: u64, n: u64| match free.last_mut() {
            Some((at, len)) if *at + *len == block * size => *len += n * size,
            _ => free.push((block * size, n * size)),
        };
        for chunk in self.chunks()? {
            match &chunk.bitmap {
                None => add(chunk.start, chunk.blocks),
                Some(map) => {
                    for b in (0..chunk.blocks).filter(|&b| !bit(map, b)) {
                        add(chunk.start + b, 1);
                    }
                }
            }
        }
        free.sort_unstable();
        Ok(free)
    }

    /// The space manager (`spaceman_phys_t`), when it could be read.
    pub fn space_manager(&self) -> Option<&[u8]> {
        self.spaceman.as_deref()
    }

    /// The chunks of blocks the space manager's bitmaps describe: chunk info blocks (through
    /// their address blocks on large containers) name each chunk's bitmap, one bit per block,
    /// set when used; a chunk without a bitmap is wholly free.
    pub fn chunks(&self) -> io::Result<Vec<Chunk>> {
        const WHAT: &str = "APFS space manager";
        let sm = self
            .spaceman
            .as_ref()
            .ok_or_else(|| bad(WHAT, 0, "could not be read"))?;
        let (cibs, cabs, at) = (
            le32(sm, 64) as usize,
            le32(sm, 68) as usize,
            le32(sm, 80) as usize,
        );
        let listed = if cabs > 0 { cabs } else { cibs };
        let addresses = sm.get(at..at + 8 * listed).ok_or_else(|| {
            bad(
                WHAT,
                at as u64,
                format!("lists {listed} blocks past its end"),
            )
        })?;
        let mut info_blocks = Vec::new();
        for a in addresses.chunks_exact(8).map(|a| le64(a, 0)) {
            if cabs == 0 {
                info_blocks.push(a);
                continue;
            }
            let cab = self.blocks.object(a, CIB_ADDRESS_BLOCK, WHAT)?;
            let n = (le32(&cab, 36) as usize).min((cab.len() - 40) / 8);
            info_blocks.extend(cab[40..40 + 8 * n].chunks_exact(8).map(|c| le64(c, 0)));
        }
        let count = self.blocks.count;
        let mut chunks = Vec::new();
        for paddr in info_blocks {
            let cib = self.blocks.object(paddr, CHUNK_INFO_BLOCK, WHAT)?;
            let n = (le32(&cib, 36) as usize).min((cib.len() - 40) / 32);
            for chunk in cib[40..40 + 32 * n].chunks_exact(32) {
                let (start, blocks, bitmap) =
                    (le64(chunk, 8), u64::from(le32(chunk, 16)), le64(chunk, 24));
                let bitmap = match bitmap {
                    0 => None,
                    b => Some(self.blocks.raw(b, WHAT)?),
                };
                let held = bitmap.as_ref().map_or(u64::MAX, |m| m.len() as u64 * 8);
                chunks.push(Chunk {
                    start,
                    blocks: blocks.min(count.saturating_sub(start)).min(held),
                    free: u64::from(le32(chunk, 20)),
                    bitmap,
                });
            }
        }
        Ok(chunks)
    }
}

/// A chunk of the container's blocks as its chunk info block describes it.
pub(super) struct Chunk {
    pub start: u64,
    pub blocks: u64,
    /// Its free blocks as the chunk info block counts them.
    pub free: u64,
    /// Its bitmap's block, where it has one.
    pub bitmap: Option<Vec<u8>>,
}

/// Whether bit `n` (block `n` of a chunk) of a space manager bitmap is set: the block is used.
pub(super) fn bit(map: &[u8], n: u64) -> bool {
    map.get((n / 8) as usize)
        .is_some_and(|b| b & (1 << (n % 8)) != 0)
}
