//! LZHUF (Haruyasu Yoshizaki's 1988 LZSS with adaptive Huffman coding, as DART "best" uses it):
//! a 4 KiB window, matches of 3 to 60 bytes, literals and match lengths coded by one adaptive
//! Huffman tree of 314 symbols, match positions by a fixed code (upper 6 bits) and plain bits.
//! The window starts zeroed, as DART's coder has it (the 1988 original filled it with spaces).
//! Written from the algorithm's published description; bounded by the output size asked for.

const WINDOW: usize = 4096;
const LOOKAHEAD: usize = 60;
const THRESHOLD: usize = 2;
/// Symbols: 256 literals, then the match lengths THRESHOLD + 1 ..= LOOKAHEAD.
const SYMBOLS: usize = 256 - THRESHOLD + LOOKAHEAD;
/// Nodes of the tree, and its root.
const NODES: usize = SYMBOLS * 2 - 1;
const ROOT: usize = NODES - 1;
const MAX_FREQ: u16 = 0x8000;

/// Bits from the input, most significant first; zeros past the end (as the original reads EOF).
struct Bits<'a> {
    input: &'a [u8],
    at: usize,
    bit: u32,
}

impl Bits<'_> {
    fn bit(&mut self) -> usize {
        let byte = self.input.get(self.at).copied().unwrap_or(0);
        let b = (byte >> (7 - self.bit)) & 1;
        self.bit += 1;
        if self.bit == 8 {
            self.bit = 0;
            self.at += 1;
        }
        usize::from(b)
    }

    fn bits(&mut self, n: u32) -> usize {
        (0..n).fold(0, |v, _| v << 1 | self.bit())
    }

    fn exhausted(&self) -> bool {
        self.at > self.input.len() + 8
    }
}

/// The adaptive Huffman tree: leaves are `son[i] >= NODES`, each node's frequency kept sorted.
struct Tree {
    freq: [u16; NODES + 1],
    parent: [usize; NODES + SYMBOLS],
    son: [usize; NODES],
}

impl Tree {
    fn new() -> Tree {
        let mut t = Tree {
            freq: [0; NODES + 1],
            parent: [0; NODES + SYMBOLS],
            son: [0; NODES],
        };
        for i in 0..SYMBOLS {
            t.freq[i] = 1;
            t.son[i] = i + NODES;
            t.parent[i + NODES] = i;
        }
        let (mut i, mut j) = (0, SYMBOLS);
        while j <= ROOT {
            t.freq[j] = t.freq[i] + t.freq[i + 1];
            t.son[j] = i;
            t.parent[i] = j;
            t.parent[i + 1] = j;
            i += 2;
            j += 1;
        }
        t.freq[NODES] = 0xFFFF;
        t.parent[ROOT] = 0;
        t
    }

    /// Halves every frequency and rebuilds the tree, when the root's count would overflow.
    fn rebuild(&mut self) {
        let mut j = 0;
        for i in 0..NODES {
            if self.son[i] >= NODES {
                self.freq[j] = self.freq[i].div_ceil(2);
                self.son[j] = self.son[i];
                j += 1;
            }
        }
        let (mut i, mut j) = (0, SYMBOLS);
        while j < NODES {
            let f = self.freq[i] + self.freq[i + 1];
            self.freq[j] = f;
            let mut k = j - 1;
            while f < self.freq[k] {
                k -= 1;
            }
            k += 1;
            self.freq.copy_within(k..j, k + 1);
            self.freq[k] = f;
            self.son.copy_within(k..j, k + 1);
            self.son[k] = i;
            i += 2;
            j += 1;
        }
        for i in 0..NODES {
            let k = self.son[i];
            self.parent[k] = i;
            if k < NODES {
                self.parent[k + 1] = i;
            }
        }
    }

    /// Counts symbol `c` once more, moving its nodes up to keep frequencies in order.
    fn update(&mut self, c: usize) {
        if self.freq[ROOT] == MAX_FREQ {
            self.rebuild();
        }
        let mut c = self.parent[c + NODES];
        loop {
            self.freq[c] += 1;
            let k = self.freq[c];
            let mut l = c + 1;
            if k > self.freq[l] {
                while k > self.freq[l + 1] {
                    l += 1;
                }
                self.freq[c] = self.freq[l];
                self.freq[l] = k;
                let i = self.son[c];
                self.parent[i] = l;
                if i < NODES {
                    self.parent[i + 1] = l;
                }
                let j = self.son[l];
                self.son[l] = i;
                self.parent[j] = c;
                if j < NODES {
                    self.parent[j + 1] = c;
                }
                self.son[c] = j;
                c = l;
            }
            c = self.parent[c];
            if c == 0 {
                break;
            }
        }
    }

    fn symbol(&mut self, bits: &mut Bits) -> usize {
        let mut c = self.son[ROOT];
        while c < NODES {
            c = self.son[c + bits.bit()];
        }
        let c = c - NODES;
        self.update(c);
        c
    }
}

/// A match's distance back: the top 6 bits by a fixed prefix code, the low 6 as they are.
fn position(bits: &mut Bits) -> usize {
    let first = bits.bits(8);
    // The code's length and value for each first byte: 32 of 3 bits, 48 of 4, 64 of 5, 48 of
    // 6, 48 of 7 and 16 of 8.
    let (len, code) = match first {
        0..=31 => (3, 0),
        32..=79 => (4, 1 + (first - 32) / 16),
        80..=143 => (5, 4 + (first - 80) / 8),
        144..=191 => (6, 12 + (first - 144) / 4),
        192..=239 => (7, 24 + (first - 192) / 2),
        _ => (8, 48 + (first - 240)),
    };
    let mut low = first;
    for _ in 0..len - 2 {
        low = low << 1 | bits.bit();
    }
    code << 6 | (low & 0x3F)
}

/// Decodes `input` into exactly `size` bytes.
pub fn decompress(input: &[u8], size: usize) -> Result<Vec<u8>, String> {
    let mut bits = Bits {
        input,
        at: 0,
        bit: 0,
    };
    let mut tree = Tree::new();
    let mut window = [0u8; WINDOW];
    let mut r = WINDOW - LOOKAHEAD;
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        if bits.exhausted() {
            return Err("the LZHUF data ends early".into());
        }
        let c = tree.symbol(&mut bits);
        if c < 256 {
            out.push(c as u8);
            window[r] = c as u8;
            r = (r + 1) % WINDOW;
            continue;
        }
        let from = (r + WINDOW - position(&mut bits) - 1) % WINDOW;
        let len = c - 255 + THRESHOLD;
        for k in 0..len {
            if out.len() == size {
                break;
            }
            let b = window[(from + k) % WINDOW];
            out.push(b);
            window[r] = b;
            r = (r + 1) % WINDOW;
        }
    }
    Ok(out)
}
