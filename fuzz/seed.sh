#!/usr/bin/env bash
# Builds each fuzz target's seed inputs in fuzz/seeds/TARGET from the shared corpus (read in
# place, never copied into the repository) and from small volumes the Debian tools and dimg
# make. Inputs above 4 MiB are left out: the fuzzer mutates small inputs faster.
# Usage: fuzz/seed.sh [CORPUS]   (default ../shared/corpus beside the repository)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
corpus=$(cd "${1:-$here/../../shared/corpus}" && pwd)
dimg=$here/../target/release/dimg
[ -x "$dimg" ] || dimg=$here/../target/debug/dimg
[ -x "$dimg" ] || (cd "$here/.." && cargo build -q -p dimg-cli && true)
[ -x "$dimg" ] || dimg=$here/../target/debug/dimg
seeds=$here/seeds
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$seeds"

# seed TARGET FILE...: copies each file of at most 4 MiB into the target's seeds.
seed() {
  local target=$1; shift
  mkdir -p "$seeds/$target"
  for f in "$@"; do
    [ -f "$f" ] && [ "$(stat -c %s "$f")" -le $((4 << 20)) ] || continue
    cp "$f" "$seeds/$target/$(basename "$f")"
  done
}

# raw DISK IMAGE: the image's decoded disk.
raw() { "$dimg" convert "$1" -format UDTO -o "$2" >/dev/null; }

# volumes DISK: each partition of the disk holding a file system, cut out and seeded for the
# target that reads that file system.
volumes() {
  "$dimg" info --json "$1" | python3 -c '
import json, sys
for p in json.load(sys.stdin)["partitions"]:
    if p.get("file_system"):
        print(p["index"], p["start"], p["size"], p["file_system"].replace(" ", "_"))' |
  while read -r index start size fs; do
    local target
    case $fs in
      HFS+|HFSX) target=hfsplus ;;
      HFS) target=hfs ;;
      MFS) target=mfs ;;
      FAT) target=fat ;;
      ISO_9660) target=iso9660 ;;
      APFS) target=apfs ;;
      UDF) target=udf ;;
      ExFAT) target=exfat ;;
      NTFS) target=ntfs ;;
      ext2|ext3|ext4) target=ext ;;
      *) continue ;;
    esac
    local out=$work/$(basename "$1").p$index
    dd if="$1" of="$out" iflag=skip_bytes,count_bytes skip="$start" count="$size" status=none
    seed "$target" "$out"
  done
}

seed udif "$corpus"/dmg/*.dmg
seed encrcdsa "$corpus"/dmg/*aes*.dmg
seed nrg "$corpus"/cd/*.nrg
seed cue "$corpus"/cd/*.cue
seed iso9660 "$corpus"/iso/*.iso
seed apfs "$corpus"/apfs/*
seed classic "$corpus"/classic/*.image "$corpus"/classic/*.img "$corpus"/classic/*.dsk "$corpus"/classic/*dart*
seed wrappers "$corpus"/classic/*.hqx "$corpus"/classic/*.img.bin
for bundle in "$corpus"/sparse/*.sparsebundle; do
  mkdir -p "$seeds/sparsebundle"
  cp "$bundle/Info.plist" "$seeds/sparsebundle/$(basename "$bundle").plist"
done

# Disks and volumes: the corpus's small images decoded, and small volumes made here.
mkdir -p "$work/src/folder/deeper"
echo "hello" > "$work/src/readme.txt"
head -c 70000 /dev/urandom > "$work/src/folder/deeper/noise.bin"
for fs in HFS+ ISO; do
  "$dimg" create -srcfolder "$work/src" -fs "$fs" -format UDRW "$work/made-$fs.dmg" >/dev/null
  raw "$work/made-$fs.dmg" "$work/made-$fs.cdr"
done
"$dimg" create -size 1m -fs HFS+ -format UDSP "$work/made.sparseimage" >/dev/null
seed sparse "$work/made.sparseimage"
"$dimg" create -size 1m -fs HFS+ -type ASIF "$work/made.asif" >/dev/null
seed asif "$work/made.asif"
# ASIF in 32 KiB chunks (dimg writes 1 MiB ones, whose first chunks make a 4 MiB file): a 1 MiB
# disk in a 64 MiB space, one table, two chunks of data and the metadata chunk.
python3 - "$seeds/asif" <<'PY'
import os, struct, sys
chunk, space, per_table = 32 << 10, 64 << 20, 2048
image = bytearray(5 * chunk)
header = struct.pack(">4sIIIQQ16sQQIHHQ", b"shdw", 1, 512, 0, 512, 1024, os.urandom(16),
                     2048, space // 512, chunk, 512, 0, space // chunk - 1)
image[:len(header)] = header
for at, version in [(512, 1), (1024, 2)]:
    image[at:at + 16] = struct.pack(">QQ", version, 1)  # table 0 in chunk 1
def entry(logical, number):  # 2048 data entries, then the bitmap's: groups of 2049
    at = chunk + 8 * (logical // 2048 * 2049 + logical % 2048)
    image[at:at + 8] = struct.pack(">Q", 1 << 62 | number)
entry(0, 2)
entry(7, 3)
entry(space // chunk - 1, 4)
image[2 * chunk:2 * chunk + 11] = b"first chunk"
image[3 * chunk:3 * chunk + 13] = b"eighth chunk!"
plist = (b'<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>'
         b'<key>internal metadata</key><dict><key>stable uuid</key>'
         b'<string>00000000-0000-4000-8000-000000000000</string></dict>'
         b'<key>user metadata</key><dict/></dict></plist>')
image[4 * chunk:4 * chunk + 20] = struct.pack(">4sIIQ", b"meta", 1, 512, len(plist))
image[4 * chunk + 512:4 * chunk + 512 + len(plist)] = plist
open(os.path.join(sys.argv[1], "small-chunks.asif"), "wb").write(image)
PY
mkfs.fat -C "$work/made.fat" 1024 >/dev/null
MTOOLS_SKIP_CHECK=1 mcopy -s -i "$work/made.fat" "$work/src/readme.txt" "$work/src/folder" ::
seed fat "$work/made.fat"
seed exfat "$corpus"/exfat/*.bin
seed ntfs "$corpus"/ntfs/*.bin
seed ext "$corpus"/ext/*.bin
genisoimage -quiet -udf -R -o "$work/made.udf.iso" "$work/src"
"$dimg" makehybrid -udf -udf-version 2.01 -o "$work/made-2.01.udf.iso" "$work/src" >/dev/null
for media in hd:2.01 cdr:2.01 bdr:2.50; do
  mkudffs --new-file --media-type="${media%:*}" --udfrev="${media#*:}" "$work/${media%:*}.udf" 1500 >/dev/null
done
seed udf "$work"/*.udf.iso "$work"/*.udf
head -c $((3 << 20)) /dev/zero > "$work/made.exfat"
mkfs.exfat "$work/made.exfat" >/dev/null
"$dimg" create -srcfolder "$work/src" -fs ExFAT -layout NONE -format UDTO "$work/dimg-exfat.cdr" >/dev/null
cp "$work/dimg-exfat.cdr" "$work/dimg.exfat"
seed exfat "$work"/*.exfat
head -c $((2 << 20)) /dev/zero > "$work/made.ntfs"
mkntfs -q -F -f "$work/made.ntfs" >/dev/null 2>&1
seed ntfs "$work/made.ntfs"
for ext in ext2 ext4; do
  mke2fs -q -F -t "$ext" -d "$work/src" "$work/made.$ext" 1M >/dev/null 2>&1
done
seed ext "$work"/made.ext2 "$work"/made.ext4
dd if=/dev/zero of="$work/classic.hfs" bs=1k count=800 status=none
hformat -l "Fuzz" "$work/classic.hfs" >/dev/null
hmount "$work/classic.hfs" >/dev/null && hcopy -r "$work/src/readme.txt" ":readme" && humount >/dev/null
seed hfs "$work/classic.hfs"
for image in "$corpus"/dmg/keramics-*.dmg "$corpus"/dmg/kaitokit-*.dmg "$corpus"/dmg/dmgwiz-zlib.dmg; do
  raw "$image" "$work/$(basename "$image").cdr"
done
seed partitions "$work"/*.cdr
for disk in "$work"/*.cdr "$corpus"/classic/openpreserve-jw-disk9-hfs.img; do
  volumes "$disk"
done

# VM disks: the small HFS+ disk made above, as qemu-img writes it in each format and subformat.
vm=$work/vm
mkdir -p "$vm"
for kind in qcow2:compat=0.10 qcow2:compat=1.1 qcow2-c:compression_type=zlib qcow2-c:compression_type=zstd \
            vmdk:subformat=monolithicSparse vmdk:subformat=streamOptimized vmdk:subformat=monolithicFlat \
            vpc:subformat=dynamic vpc:subformat=fixed vhdx:block_size=1M vdi:static=off parallels:cluster_size=64k; do
  driver=${kind%%:*}; options=${kind#*:}; compress=
  [ "$driver" = qcow2-c ] && driver=qcow2 && compress=-c
  out=$vm/${options#*=}.$driver
  qemu-img convert $compress -f raw -O "$driver" -o "$options" "$work/made-HFS+.cdr" "$out"
done
seed qcow2 "$vm"/*.qcow2
seed vmdk "$vm"/*.vmdk
seed vhd "$vm"/*.vpc
seed vhdx "$vm"/*.vhdx
seed vdi "$vm"/*.vdi
seed parallels "$vm"/*.parallels
cat > "$seeds/parallels/DiskDescriptor.xml" <<'XML'
<?xml version='1.0' encoding='UTF-8'?>
<Parallels_disk_image Version="1.0">
 <StorageData><Storage><Start>0</Start><End>8</End><Blocksize>8</Blocksize>
  <Image><GUID>{1}</GUID><Type>Compressed</Type><File>vm.hdd.0.{1}.hds</File></Image>
 </Storage></StorageData>
 <Snapshots><Shot><GUID>{1}</GUID><ParentGUID>{00000000-0000-0000-0000-000000000000}</ParentGUID></Shot></Snapshots>
</Parallels_disk_image>
XML

# MFS: no tool makes it; one file on a 400K volume, to Inside Macintosh II's layout.
python3 - "$seeds/mfs" <<'PY'
import os, struct, sys
os.makedirs(sys.argv[1], exist_ok=True)
disk = bytearray(800 * 512)
mdb = struct.pack(">HIIHHHHHIIHIH", 0xD2D7, 0, 0, 0, 1, 4, 12, 391, 1024, 8192, 16, 2, 390)
disk[1024:1024 + len(mdb)] = mdb
disk[1024 + 36:1024 + 41] = b"\x04Fuzz"
disk[1024 + 64:1024 + 66] = b"\x00\x10"  # block 2 ends its chain (link 1)
entry = struct.pack(">BB8s8sIHIIHIIII", 0x80, 0, b"TEXTttxt", bytes(8), 1, 2, 5, 1024, 0, 0, 0, 0, 0)
disk[4 * 512:4 * 512 + len(entry) + 3] = entry + b"\x02hi"
disk[16 * 512:16 * 512 + 5] = b"hello"
open(os.path.join(sys.argv[1], "one-file.mfs"), "wb").write(disk)
PY

# Codecs: [codec, size in KiB (2 bytes), stream], streams of a page of text.
python3 - "$seeds/codecs" <<'PY'
import bz2, lzma, os, sys, zlib
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
text = (b"dimg fuzz seed: the quick brown fox jumps over the lazy dog. " * 40)[:2048]
for index, name, stream in [(1, "zlib", zlib.compress(text)), (2, "bzip2", bz2.compress(text)),
                            (4, "xz", lzma.compress(text, check=lzma.CHECK_CRC32))]:
    open(os.path.join(out, name), "wb").write(bytes([index, 0, 2]) + stream)
PY
for target in "$seeds"/*; do echo "$(basename "$target"): $(ls "$target" | wc -l) seeds"; done
