//! How the Finder points at a file of the volume it is showing: a classic alias record (version
//! 2, what the icon view's `backgroundImageAlias` holds) and a bookmark (what `pBBk` holds, and
//! what newer Finders resolve first). Both name the file by its volume, folder, name and catalog
//! IDs, so they resolve wherever the image is mounted.

/// Seconds from 1904 (HFS+ dates) to 2001 (Core Foundation's reference date).
const FROM_1904_TO_2001: f64 = 3_061_152_000.0;

/// A file in a folder at the root of an HFS+ volume, as an alias or bookmark names it.
pub struct Target<'a> {
    pub volume_name: &'a str,
    /// The volume's creation date, seconds since 1904.
    pub volume_created: u32,
    pub folder_name: &'a str,
    pub folder_id: u32,
    pub file_name: &'a str,
    pub file_id: u32,
    /// The file's creation date, seconds since 1904.
    pub file_created: u32,
}

impl Target<'_> {
    fn mount_point(&self) -> String {
        format!("/Volumes/{}", self.volume_name)
    }
}

/// A Pascal string of at most `field - 1` bytes in `field` bytes, ':' stored as '/' (how the
/// Carbon names of an alias keep it).
fn pascal(out: &mut Vec<u8>, text: &str, field: usize) {
    let bytes: Vec<u8> = text
        .bytes()
        .map(|b| if b == b':' { b'/' } else { b })
        .collect();
    let len = bytes.len().min(field - 1);
    out.push(len as u8);
    out.extend_from_slice(&bytes[..len]);
    out.extend(std::iter::repeat_n(0, field - 1 - len));
}

fn tag(out: &mut Vec<u8>, tag: i16, value: &[u8]) {
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
    if value.len() % 2 == 1 {
        out.push(0);
    }
}

fn utf16_tag(out: &mut Vec<u8>, id: i16, text: &str) {
    let units: Vec<u16> = text.replace(':', "/").encode_utf16().collect();
    let mut value = (units.len() as u16).to_be_bytes().to_vec();
    units
        .iter()
        .for_each(|u| value.extend_from_slice(&u.to_be_bytes()));
    tag(out, id, &value);
}

/// A version 2 alias record of `target`, with the tags the Finder writes: the folder's name,
/// the dates in high resolution, the catalog path, the Carbon and POSIX paths.
pub fn alias(target: &Target) -> Vec<u8> {
    let mut a = Vec::with_capacity(400);
    a.extend_from_slice(&[0; 4]); // no application's info
    a.extend_from_slice(&[0, 0]); // the record's length, filled in at the end
    a.extend_from_slice(&2u16.to_be_bytes());
    a.extend_from_slice(&0u16.to_be_bytes()); // a file
    pascal(&mut a, target.volume_name, 28);
    a.extend_from_slice(&target.volume_created.to_be_bytes());
    a.extend_from_slice(b"H+");
    a.extend_from_slice(&0u16.to_be_bytes()); // a fixed disk
    a.extend_from_slice(&target.folder_id.to_be_bytes());
    pascal(&mut a, target.file_name, 64);
    a.extend_from_slice(&target.file_id.to_be_bytes());
    a.extend_from_slice(&target.file_created.to_be_bytes());
    a.extend_from_slice(&[0; 8]); // creator and type
    a.extend_from_slice(&(-1i16).to_be_bytes()); // levels from the alias: unknown
    a.extend_from_slice(&(-1i16).to_be_bytes()); // levels to the target: unknown
    a.extend_from_slice(&[0; 4 + 2 + 10]); // volume attributes, file system ID, reserved
    let folder: Vec<u8> = target.folder_name.replace(':', "/").into_bytes();
    tag(&mut a, 0, &folder);
    tag(
        &mut a,
        16,
        &(u64::from(target.volume_created) << 16).to_be_bytes(),
    );
    tag(
        &mut a,
        17,
        &(u64::from(target.file_created) << 16).to_be_bytes(),
    );
    tag(&mut a, 1, &target.folder_id.to_be_bytes());
    // The Carbon path separates the last name with ":\0", as the Finder's own aliases do.
    let carbon = format!(
        "{}:{}:\0{}",
        target.volume_name,
        target.folder_name.replace(':', "/"),
        target.file_name.replace(':', "/")
    );
    tag(&mut a, 2, carbon.as_bytes());
    utf16_tag(&mut a, 14, target.file_name);
    utf16_tag(&mut a, 15, target.volume_name);
    let posix = format!("/{}/{}", target.folder_name, target.file_name);
    tag(&mut a, 18, posix.as_bytes());
    tag(&mut a, 19, target.mount_point().as_bytes());
    a.extend_from_slice(&(-1i16).to_be_bytes());
    a.extend_from_slice(&0u16.to_be_bytes());
    let len = a.len() as u16;
    a[4..6].copy_from_slice(&len.to_be_bytes());
    a
}

/// One item of a bookmark's data.
enum Item {
    Text(String),
    Url(String),
    Number(i64),
    Date(f64),
    Bool(bool),
    Array(Vec<Item>),
}

/// Appends `item` (padded to 4 bytes) at `data`'s end; gives its offset.
fn put(data: &mut Vec<u8>, item: &Item) -> u32 {
    let head = |data: &mut Vec<u8>, len: usize, kind: u32| {
        let at = data.len() as u32;
        data.extend_from_slice(&(len as u32).to_le_bytes());
        data.extend_from_slice(&kind.to_le_bytes());
        at
    };
    let at = match item {
        Item::Text(s) => {
            let at = head(data, s.len(), 0x0101);
            data.extend_from_slice(s.as_bytes());
            at
        }
        Item::Url(s) => {
            let at = head(data, s.len(), 0x0901);
            data.extend_from_slice(s.as_bytes());
            at
        }
        Item::Number(n) => {
            let at = head(data, 8, 0x0304); // a 64-bit integer
            data.extend_from_slice(&n.to_le_bytes());
            at
        }
        // Dates alone are big-endian.
        Item::Date(seconds) => {
            let at = head(data, 8, 0x0400);
            data.extend_from_slice(&seconds.to_be_bytes());
            at
        }
        Item::Bool(b) => head(data, 0, 0x0500 | u32::from(*b)),
        Item::Array(items) => {
            // The elements first, then the array of their offsets.
            let offsets: Vec<u32> = items.iter().map(|i| put(data, i)).collect();
            let at = head(data, 4 * offsets.len(), 0x0601);
            offsets
                .iter()
                .for_each(|o| data.extend_from_slice(&o.to_le_bytes()));
            at
        }
    };
    data.resize(data.len().next_multiple_of(4), 0);
    at
}

/// A bookmark of `target` mounted at `/Volumes/NAME`: its path and catalog IDs, its creation
/// date, and the volume's path, URL, name and creation date.
pub fn bookmark(target: &Target) -> Vec<u8> {
    let date = |mac: u32| Item::Date(f64::from(mac) - FROM_1904_TO_2001);
    let mount = target.mount_point();
    let entries: Vec<(u32, Item)> = vec![
        (
            0x1004,
            Item::Array(
                [
                    "Volumes",
                    target.volume_name,
                    target.folder_name,
                    target.file_name,
                ]
                .into_iter()
                .map(|s| Item::Text(s.into()))
                .collect(),
            ),
        ),
        (
            0x1005,
            Item::Array(vec![
                Item::Number(target.folder_id.into()),
                Item::Number(target.file_id.into()),
            ]),
        ),
        (0x1040, date(target.file_created)),
        (0x2002, Item::Text(mount.clone())),
        (0x2005, Item::Url(format!("file://{mount}/"))),
        (0x2010, Item::Text(target.volume_name.into())),
        (0x2013, date(target.volume_created)),
        (0x2030, Item::Bool(false)),
        // The containing folder is the path's third name.
        (0xC001, Item::Number(2)),
    ];
    // Offsets count from the end of the 48-byte header; the first 4 bytes there point at the
    // table of contents, which follows the items.
    let mut data = vec![0u8; 4];
    let placed: Vec<(u32, u32)> = entries
        .iter()
        .map(|(key, item)| (*key, put(&mut data, item)))
        .collect();
    let toc_at = data.len() as u32;
    data[0..4].copy_from_slice(&toc_at.to_le_bytes());
    let toc_len = 12 * placed.len() as u32;
    // The table's size as the Finder counts it: its entries less 8.
    for n in [toc_len - 8, 0xFFFF_FFFE, 1, 0, placed.len() as u32] {
        data.extend_from_slice(&n.to_le_bytes());
    }
    for (key, at) in placed {
        for n in [key, at, 0] {
            data.extend_from_slice(&n.to_le_bytes());
        }
    }
    let mut b = Vec::with_capacity(48 + data.len());
    b.extend_from_slice(b"book");
    b.extend_from_slice(&(48 + data.len() as u32).to_le_bytes());
    b.extend_from_slice(&0x1004_0000u32.to_le_bytes());
    b.extend_from_slice(&48u32.to_le_bytes());
    b.extend_from_slice(&[0; 32]);
    b.extend_from_slice(&data);
    b
}
