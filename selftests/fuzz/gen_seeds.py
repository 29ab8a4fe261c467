#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the hand-made seeds of the ring_fuzz corpus.

Usage: selftests/fuzz/gen_seeds.py DIR

Each seed is a short scenario in the input format documented at the top of
ring_fuzz.c (a config, an init flags byte, then operations).  The committed
corpus (selftests/fuzz/corpus/ring) holds these under their names plus what
`run.sh --update-corpus` merged in (named by their SHA-1).
"""
import os
import random
import struct
import sys

BLOCK, REJECT, DROP = 0, 1, 2
CAP_LIMIT = 0x1000000
MSG_LIMIT = 0x100000

# rf_cfg() raw field numbers (cfg_set_field)
F_FLAGS, F_RES0, F_RES1, F_RES2, F_RES3, F_VARIANT = 0, 1, 2, 3, 4, 5
F_MIN, F_MAX, F_INIT, F_GROWTH, F_SHRINK, F_MSG = 6, 7, 8, 9, 10, 11
F_BYTES, F_POLICY, F_PUSH_TO, F_SIZE = 12, 13, 14, 15

# rf_tweak() fields
T_MIN, T_MAX, T_INIT, T_GROWTH, T_SHRINK, T_MSG, T_BYTES, T_POLICY = range(8)
T_RESIZE, T_FLAGS, T_RES, T_VARIANT, T_TIMEOUTS = 8, 9, 10, 11, 12
REL, FIX = 0x80, 0x40

# rf_len() escapes
L_U16, L_MAXMSG, L_MAXMSG1, L_ROOM, L_ROOM1, L_X16 = 250, 251, 252, 253, 254, 255


def cfg(mn=4, mx=64, init=None, growth=200, shrink=25, msg=1000,
        max_bytes=60000, policy=BLOCK, raw=()):
    """A config; raw = [(field, value)] set after the compact fields."""
    init = mn if init is None else init
    span = mx - mn
    assert 0 <= mn <= 255 and 0 <= span <= 0xffff and mn <= init <= mx
    assert 100 <= growth <= 355 and 0 <= shrink <= 127
    b = struct.pack('<BHHBBHHB', mn, span, init - mn, growth - 100, shrink,
                    msg, 0xffff if max_bytes is None else max_bytes, policy)
    for field, value in raw:
        b += bytes([0x80 | field]) + struct.pack('<Q', value)
    if len(raw) < 4:
        b += b'\0'
    return b


def ln(n):
    """A message length in rf_len() form."""
    if n < 250:
        return bytes([n])
    return bytes([L_U16]) + struct.pack('<H', n)


def push(n=1):
    return b'\0' + ln(n)


def push_esc(code, arg=None):
    return bytes([0, code]) + (struct.pack('<H', arg) if arg is not None
                               else b'')


POP, TAKE = b'\1', b'\2'


def untake(i=0):
    return bytes([3, i])


def commit(i=0):
    return bytes([4, i])


def setcfg(c):
    return b'\5' + c


def tweak(field, value, rel=False, fix=True):
    sel = field | (REL if rel else 0) | (FIX if fix else 0)
    return bytes([6, sel]) + struct.pack('<h' if rel else '<H', value)


def fail(n=1):
    return bytes([7, n])


def burst(count, n=1, step=0):
    out = b''
    while count > 0:
        k = min(count, 256)
        out += bytes([8, k - 1]) + ln(n) + bytes([step])
        count -= k
    return out


def pops(count):
    out = b''
    while count > 0:
        k = min(count, 256)
        out += bytes([9, k - 1])
        count -= k
    return out


def seed(c, *ops, init_fail=False):
    return c + bytes([1 if init_fail else 0]) + b''.join(ops)


SEEDS = {
    # grow 4 -> 8 -> 16 -> 32 -> 64 (max), then EAGAIN, then shrink back
    'grow-shrink-block': seed(cfg(4, 64), burst(70, 10), pops(70)),
    'grow-150-nonpow2': seed(cfg(3, 500, growth=150, shrink=30),
                             burst(200, 3, 5), pops(200)),
    'grow-101-thrash': seed(cfg(1, 97, growth=101, shrink=99,
                                policy=DROP, max_bytes=1000),
                            burst(120, 5, 3), pops(60), burst(40, 2),
                            pops(120)),
    'grow-huge-factor': seed(cfg(1, 60000, raw=[(F_GROWTH, 9999),
                                                (F_SHRINK, 1)]),
                             burst(300, 0), pops(300)),
    'grow-enomem': seed(cfg(4, 64), burst(4, 7), fail(2), push(7), push(7),
                        pops(5)),
    'shrink-enomem': seed(cfg(2, 64), burst(32, 1), pops(23), fail(1),
                          POP, POP, pops(10)),
    'msg-alloc-fails': seed(cfg(4, 64), push(5), fail(2), push(5), push(5),
                            push(5), pops(4)),
    'init-enomem': seed(cfg(8, 64), push(3), POP, init_fail=True),
    'reject-full': seed(cfg(2, 2, policy=REJECT), push(1), push(1), push(1),
                        push(1), POP, push(1), pops(3)),
    'reject-bytes': seed(cfg(2, 10, policy=REJECT, max_bytes=40),
                         push(20), push(20), push(1), push(0),
                         push_esc(L_ROOM), push_esc(L_ROOM1), pops(4)),
    'block-bytes-exact': seed(cfg(2, 10, max_bytes=50), push(7),
                              push_esc(L_ROOM1), push_esc(L_ROOM), push(0),
                              push(1), pops(4)),
    'emsgsize': seed(cfg(2, 10, msg=30), push_esc(L_MAXMSG),
                     push_esc(L_MAXMSG1), push(200), POP, POP),
    'emsgsize-maxbytes': seed(cfg(2, 10, msg=3000, max_bytes=40),
                              push_esc(L_MAXMSG), push_esc(L_MAXMSG1),
                              POP),
    'drop-oldest-capacity': seed(cfg(2, 4, policy=DROP), burst(7, 8),
                                 pops(4)),
    'drop-oldest-bytes': seed(cfg(8, 8, policy=DROP, max_bytes=100),
                              push(30), push(30), push(30), push(0),
                              push(70), push(100), pops(2)),
    'drop-oldest-skips-taken': seed(cfg(2, 2, policy=DROP), push(8),
                                    push(8), TAKE, push(8), untake(0),
                                    pops(2), push(8), push(8), TAKE, TAKE,
                                    push(8), untake(1), untake(0), pops(2)),
    'drop-oldest-no-help': seed(cfg(8, 8, policy=DROP, max_bytes=100),
                                push(80), push(10), TAKE, push(30),
                                untake(0), pops(2)),
    'drop-oldest-grow-enomem': seed(cfg(2, 16, policy=DROP, max_bytes=100),
                                    push(10), push(10), fail(2), push(10),
                                    push(10), push(90), pops(3)),
    'take-untake-order': seed(cfg(8, 64), burst(5, 3), pops(5),
                              burst(6, 16), TAKE, untake(0), TAKE, TAKE,
                              TAKE, TAKE, untake(3), untake(2), untake(1),
                              untake(0), pops(6)),
    'untake-out-of-order': seed(cfg(4, 64), burst(6, 2, 1), TAKE, TAKE,
                                TAKE, untake(0), commit(1), untake(0),
                                pops(6)),
    'untake-after-grow': seed(cfg(4, 1024, growth=150), push(5), push(5),
                              POP, POP, burst(4, 9), TAKE, TAKE, TAKE,
                              push(9), burst(95, 9), untake(2), untake(1),
                              untake(0), pops(100)),
    'untake-after-shrink': seed(cfg(2, 1024), burst(16, 2), pops(11), TAKE,
                                TAKE, TAKE, commit(0), untake(1),
                                untake(0), pops(4)),
    'commit-shrinks': seed(cfg(4, 64), burst(32, 1), pops(23), TAKE,
                           commit(0), pops(8)),
    'taken-count-bounds': seed(cfg(4, 4, max_bytes=40), push(10), push(10),
                               push(10), TAKE, TAKE, push(11), push(0),
                               push(0), commit(0), push(10), untake(0),
                               pops(4)),
    'setcfg-ebusy-capacity': seed(cfg(4, 64), burst(20, 5), TAKE,
                                  tweak(T_MAX, -1, rel=True),
                                  tweak(T_MAX, 0, rel=True), untake(0),
                                  pops(20)),
    'setcfg-ebusy-bytes': seed(cfg(4, 64), burst(10, 5),
                               tweak(T_BYTES, -1, rel=True),
                               tweak(T_BYTES, 0, rel=True), push(1),
                               pops(10)),
    'setcfg-enomem': seed(cfg(4, 64), burst(10, 5), fail(1),
                          tweak(T_MIN, 5, rel=True),
                          tweak(T_MIN, 5, rel=True), pops(10)),
    'setcfg-clamp-down': seed(cfg(2, 200), burst(100, 1), pops(90),
                              tweak(T_MAX, 3, rel=True), fail(1),
                              tweak(T_MAX, 2, rel=True), pops(10)),
    'setcfg-forced-resize': seed(cfg(2, 200), burst(30, 2), TAKE, TAKE,
                                 tweak(T_RESIZE, 0, rel=True),
                                 tweak(T_RESIZE, 7, rel=True),
                                 tweak(T_RESIZE, -1, rel=True), untake(1),
                                 untake(0), pops(30)),
    'setcfg-einval': seed(cfg(4, 64), push(3),
                          tweak(T_GROWTH, 100, fix=False),
                          tweak(T_SHRINK, 0, fix=False),
                          tweak(T_SHRINK, 50, fix=False),
                          tweak(T_POLICY, 3, fix=False),
                          tweak(T_VARIANT, 1, fix=False),
                          tweak(T_FLAGS, 1, fix=False),
                          tweak(T_RES, 4 * 1 + 2, fix=False),
                          tweak(T_MSG, 0, fix=False),
                          tweak(T_BYTES, 0, fix=False),
                          tweak(T_MIN, 0, fix=False),
                          tweak(T_INIT, 1, fix=False), POP),
    'setcfg-policy-to-drop': seed(cfg(2, 4), burst(4, 6),
                                  tweak(T_POLICY, DROP), burst(3, 6),
                                  tweak(T_POLICY, REJECT), push(6),
                                  pops(4)),
    'setcfg-shrink-msg': seed(cfg(2, 64, msg=200), burst(5, 100),
                              tweak(T_MSG, 50), push(100), push(50),
                              tweak(T_TIMEOUTS, 3), tweak(T_GROWTH, 101),
                              pops(5)),
    'setcfg-full': seed(cfg(4, 64), burst(10, 3),
                        setcfg(cfg(1, 300, growth=150, shrink=60,
                                   policy=DROP)),
                        setcfg(cfg(20, 40, max_bytes=29)),
                        setcfg(cfg(11, 40)), burst(50, 1), pops(60)),
    'valid-tiny': seed(cfg(1, 1, msg=1, max_bytes=1), push(1), push(1),
                       push(2), POP, POP),
    'valid-edges': seed(cfg(1, 2, raw=[(F_MAX, CAP_LIMIT), (F_MSG, MSG_LIMIT),
                                       (F_BYTES, 2**64 - 1)]),
                        push_esc(L_MAXMSG), push_esc(L_MAXMSG1), POP),
    'valid-shrink99': seed(cfg(1, 50, growth=101, shrink=99), burst(60, 1),
                           pops(60)),
    'valid-thrash-edge': seed(cfg(4, 400, growth=204, shrink=49),
                              burst(200, 1), pops(200)),
}

INVALID = {
    'min0': cfg(0, 10),
    'growth100': cfg(4, 64, growth=100),
    'shrink0': cfg(4, 64, shrink=0),
    'shrink100': cfg(4, 64, shrink=100),
    'thrash': cfg(4, 64, growth=200, shrink=50),
    'msg0': cfg(4, 64, msg=0),
    'msg-over': cfg(4, 64, raw=[(F_MSG, MSG_LIMIT + 1)]),
    'bytes0': cfg(4, 64, max_bytes=0),
    'policy3': cfg(4, 64, policy=3),
    'flags': cfg(4, 64, raw=[(F_FLAGS, 1 << 31)]),
    'reserved': cfg(4, 64, raw=[(F_RES3, 1 << 63)]),
    'variant': cfg(4, 64, raw=[(F_VARIANT, 1)]),
    'max-over': cfg(4, 64, raw=[(F_MAX, CAP_LIMIT + 1)]),
    'max-lt-min': cfg(4, 64, raw=[(F_MAX, 3)]),
    'init-gt-max': cfg(4, 64, raw=[(F_INIT, 65)]),
    'init-lt-min': cfg(4, 64, raw=[(F_INIT, 3)]),
    'growth-huge': cfg(4, 64, raw=[(F_GROWTH, 2**32 - 1), (F_SHRINK, 1)]),
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, 'seed-' + name), 'wb') as f:
            f.write(data)
    for name, c in INVALID.items():
        with open(os.path.join(out, 'seed-invalid-' + name), 'wb') as f:
            f.write(seed(c, push(1)))
    rnd = random.Random(0xe1a571c)
    for i in range(4):
        c = cfg(rnd.randint(1, 8), rnd.randint(8, 300), growth=150 + 50 * i,
                shrink=25, max_bytes=rnd.randint(100, 5000), policy=i % 3)
        ops = bytes(rnd.choice([0, 0, 0, 1, 1, 2, 3, 4, 8, 9]) if k % 2 == 0
                    else rnd.randint(0, 40) for k in range(400))
        with open(os.path.join(out, 'seed-mixed-%d' % i), 'wb') as f:
            f.write(seed(c, ops))


if __name__ == '__main__':
    main()
