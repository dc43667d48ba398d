#!/usr/bin/env python3
"""Independent reference for tn_rng (splitmix64 seeding + xoshiro256**).

Prints the first outputs for seed 42 so that tests/test_core.c can compare
the C generator against numbers computed outside the library. Run:
    python3 tests/rng_reference.py
"""
M = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return state, z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M


class Xoshiro:
    """xoshiro256** seeded by splitmix64, as tn_rng_seed / tn_rng_next."""

    def __init__(self, seed):
        self.s, st = [], seed
        for _ in range(4):
            st, v = splitmix64(st)
            self.s.append(v)

    def next(self):
        s = self.s
        out = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return out


def xoshiro(seed, n):
    r = Xoshiro(seed)
    return [r.next() for _ in range(n)]


if __name__ == "__main__":
    for v in xoshiro(42, 4):
        print("0x%016xULL," % v)
    print("uniform:", [(v >> 11) * 2.0**-53 for v in xoshiro(42, 2)])
