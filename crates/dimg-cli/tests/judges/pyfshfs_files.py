#!/usr/bin/env python3
"""Reads every file of the HFS+ volume at OFFSET in a raw disk with libyal's reader (pyfshfs)
and prints {path: sha256} as JSON: the judge of a volume dimg changed. Usage: pyfshfs_files.py DISK OFFSET"""
import hashlib
import json
import os
import sys

import pyfshfs


class Window:
    """The disk from OFFSET on, as the file object pyfshfs reads."""

    def __init__(self, path, offset):
        self.file, self.offset, self.at = open(path, "rb"), offset, 0
        self.size = os.path.getsize(path) - offset

    def read(self, n=-1):
        n = self.size - self.at if n is None or n < 0 else min(n, self.size - self.at)
        self.file.seek(self.offset + self.at)
        data = self.file.read(n)
        self.at += len(data)
        return data

    def seek(self, offset, whence=0):
        self.at = [offset, self.at + offset, self.size + offset][whence]
        return self.at

    def tell(self):
        return self.at

    def get_size(self):
        return self.size


def walk(entry, path, out):
    for child in entry.sub_file_entries:
        where = f"{path}/{child.name}" if path else child.name
        if child.number_of_sub_file_entries or child.file_mode & 0o170000 == 0o040000:
            walk(child, where, out)
        else:
            out[where] = hashlib.sha256(child.read_buffer(child.size) if child.size else b"").hexdigest()


if __name__ == "__main__":
    volume = pyfshfs.volume()
    volume.open_file_object(Window(sys.argv[1], int(sys.argv[2])))
    files = {}
    walk(volume.get_root_directory(), "", files)
    json.dump(files, sys.stdout)
