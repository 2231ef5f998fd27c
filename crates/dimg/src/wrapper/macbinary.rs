//! MacBinary I, II and III: a 128-byte header (name, type, creator, fork lengths; from II on a
//! CRC-16 of itself), an optional secondary header, then the data fork and the resource fork,
//! each padded to 128 bytes.

use super::MacFile;
use crate::bytes::{be16, be32, crc16_xmodem, mac_roman};
use crate::error::FormatError;
use crate::io::{ReadAt, Slice};
use std::io;
use std::sync::Arc;

pub(super) fn open(source: &Arc<dyn ReadAt>) -> io::Result<MacFile> {
    let mut h = [0u8; 128];
    source.read_exact_at(0, &mut h)?;
    let crc_ok = crc16_xmodem(&h[..124]) == be16(&h, 124);
    let wrapper = match (crc_ok, h[122]) {
        (true, 130..) => "MacBinary III",
        (true, _) => "MacBinary II",
        (false, _) => "MacBinary",
    };
    let (data, resource) = (u64::from(be32(&h, 83)), u64::from(be32(&h, 87)));
    let secondary = match wrapper {
        "MacBinary" => 0,
        _ => u64::from(be16(&h, 120)).next_multiple_of(128),
    };
    let data_at = 128 + secondary;
    let resource_at = data_at + data.next_multiple_of(128);
    if data_at + data > source.size() || resource_at + resource > source.size() {
        return Err(FormatError::io(
            "MacBinary header",
            83,
            format!(
                "a data fork of {data} bytes and a resource fork of {resource} do not fit in \
                 the file's {}",
                source.size()
            ),
        ));
    }
    let name = &h[2..2 + usize::from(h[1]).min(63)];
    Ok(MacFile {
        wrapper,
        name: mac_roman(name),
        file_type: h[65..69].try_into().expect("4 bytes"),
        creator: h[69..73].try_into().expect("4 bytes"),
        data: Arc::new(Slice::new(source.clone(), data_at, data)),
        resource: Arc::new(Slice::new(source.clone(), resource_at, resource)),
    })
}
