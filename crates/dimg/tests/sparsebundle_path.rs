//! `sparsebundle::bundle_of`: a file chosen inside a sparse bundle stands for the bundle.

use dimg::container::sparsebundle::bundle_of;

#[test]
fn a_file_chosen_inside_a_bundle_opens_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("Disk.sparsebundle");
    std::fs::create_dir_all(bundle.join("bands")).unwrap();
    std::fs::write(bundle.join("Info.plist"), b"<plist/>").unwrap();
    std::fs::write(bundle.join("bands/0"), b"").unwrap();
    assert_eq!(bundle_of(&bundle.join("Info.plist")), Some(bundle.clone()));
    assert_eq!(bundle_of(&bundle.join("bands/0")), Some(bundle.clone()));
    let plain = dir.path().join("plain.dmg");
    std::fs::write(&plain, b"").unwrap();
    assert_eq!(bundle_of(&plain), None);
    // A folder named like a bundle without its Info.plist is not one.
    std::fs::remove_file(bundle.join("Info.plist")).unwrap();
    assert_eq!(bundle_of(&bundle.join("bands/0")), None);
}
