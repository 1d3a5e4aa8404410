//! The property tests' random numbers (compiled only for `cargo test`): a tiny deterministic
//! generator (xorshift64*), so the pure layers' property tests need no new dependency and a
//! failure replays from its seed. `wire`, `metadata`, `timeout` and `status` share it.

/// xorshift64* over a non-zero seed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
