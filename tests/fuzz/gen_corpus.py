#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

The control messages follow struct onering_msg in shm/proto.h byte for byte
(128 bytes, little-endian; its static_asserts pin the header at 16 bytes).
Seeds are named after what they hold; run again after a layout change:

    tests/fuzz/gen_corpus.py            # rewrites the generated seeds

Seeds named regress-* (written by hand from a crash) and manual-* (written by hand) are never touched here.
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

MAGIC = 0x4D524E4F  # "ONRM"
VERSION = 1
REPLY = 0x8000
ABI_MAJOR, ABI_MINOR = 1, 9  # 1.9: queues on bells pages with a summary
(HELLO, QUEUE_OPEN, QUEUE_CLOSE, SUB_ADD, STATS, STATS_ITEM, STATS_END, SHUTDOWN, GROUP,
 PORT_TX) = range(1, 11)
EV_TIMER = 2
EV_STREAM = 11
# struct onering_request ops (shm/abi.h)
(REQ_NOP, REQ_REARM, REQ_MOD, REQ_DEL, REQ_POST, REQ_TIMER_ARM, REQ_WORD_WATCH, REQ_SEND,
 REQ_STREAM_DONE, REQ_CLOSE) = range(10)
TIMER_ABSTIME = 0x1
EPOLLIN = 0x1

# fuzz_proto byte 0: bits 0-1 fds sent, bits 2-3 max_fds kept, bit 6 HELLO reply to the client
def mode(nfds=0, max_fds=1, hello_reply=False):
    return bytes([nfds | (max_fds << 2) | (0x40 if hello_reply else 0)])


def name(s):
    return s.encode().ljust(32, b"\0")


def msg(mtype, body=b"", seq=1, status=0, magic=MAGIC, version=VERSION):
    head = struct.pack("<IHHIi", magic, version, mtype, seq, status)
    assert len(body) <= 112
    return head + body.ljust(112, b"\0")


def hello(pid=1234, epoch=0, client_id=0, max_subs=0, inst="default"):
    return struct.pack("<HHIQII", ABI_MAJOR, ABI_MINOR, pid, epoch, client_id, max_subs) + name(inst)


def queue_open(ev=1024, sq=256, node=-1, cpu=0, qid=0, poller=0, start=0, group="",
               group_id=0, snap=0, words=0, levels=0, rx=0, tx=0, buf=0):
    return struct.pack("<IIiiIIQ", ev, sq, node, cpu, qid, poller, start) + name(group) + \
        struct.pack("<IIIIIIII", group_id, snap, words, levels, 0, rx, tx, buf)


def sub_add(qid=1, events=EPOLLIN, smode=0, group_id=0, cookie=42, sub_id=0, sub_gen=0,
            home=-1, kind=0):
    return struct.pack("<IIIIQIIiI", qid, events, smode, group_id, cookie, sub_id, sub_gen, home,
                       kind)


def group(gname="workers", gid=0, gset=0x1F, flags=0, policy=3, numa=0, spill=75, wake=1,
          max_running=4, backlog=1024, members=0):
    return name(gname) + struct.pack("<IIIBBBBIII", gid, gset, flags, policy, numa, spill, wake,
                                     max_running, backlog, members)


def stats_item(what=3, oid=1, pid=1234, node=0):
    return struct.pack("<IIII", what, oid, pid, node) + struct.pack("<12Q", *range(1, 13))


def port_tx(port=0, length=60):
    frame = bytes(range(length)).ljust(96, b"\0")
    return struct.pack("<HHI", port, length, 0) + frame


def proto_seeds():
    s = {}
    s["hello"] = mode() + msg(HELLO, hello())
    s["hello-reply"] = mode(hello_reply=True) + msg(HELLO | REPLY, hello(epoch=0x1234567890,
                                                                          client_id=7, max_subs=65536))
    s["hello-reply-eacces"] = mode(hello_reply=True) + msg(HELLO | REPLY, hello(), status=-13)
    s["hello-reply-eproto"] = mode(hello_reply=True) + msg(HELLO | REPLY, hello(), status=-71)
    s["hello-reply-enxio"] = mode(hello_reply=True) + msg(HELLO | REPLY, hello(inst="other"),
                                                          status=-6)
    s["hello-reply-fds"] = mode(nfds=2, hello_reply=True) + msg(HELLO | REPLY, hello())
    s["queue-open"] = mode() + msg(QUEUE_OPEN, queue_open(group="workers"), seq=2)
    s["queue-open-reply-3fds"] = mode(nfds=3, max_fds=3) + msg(
        QUEUE_OPEN | REPLY, queue_open(node=0, qid=1, poller=0, start=1 << 40, group="workers",
                                       group_id=1, snap=128, words=4), seq=2)
    s["queue-close"] = mode() + msg(QUEUE_CLOSE, struct.pack("<I", 1), seq=3)
    s["sub-add-fd"] = mode(nfds=1) + msg(SUB_ADD, sub_add(), seq=4)
    s["sub-add-timer"] = mode() + msg(SUB_ADD, sub_add(events=0, kind=EV_TIMER), seq=5)
    s["sub-add-extra-fds"] = mode(nfds=3, max_fds=1) + msg(SUB_ADD, sub_add(), seq=6)
    s["stats"] = mode() + msg(STATS, seq=7)
    s["stats-item"] = mode() + msg(STATS_ITEM | REPLY, stats_item(), seq=7)
    s["stats-end"] = mode() + msg(STATS_END | REPLY, seq=7)
    s["shutdown"] = mode() + msg(SHUTDOWN, seq=0)
    s["group"] = mode() + msg(GROUP, group(), seq=8)
    s["group-reply"] = mode() + msg(GROUP | REPLY, group(gid=2, gset=0, members=3), seq=8)
    s["port-tx"] = mode() + msg(PORT_TX, port_tx(), seq=9)
    # malformed: the broker must refuse these without trusting a field
    s["bad-magic"] = mode() + msg(HELLO, hello(), magic=0x4F4E524D)
    s["bad-version"] = mode() + msg(HELLO, hello(), version=2)
    s["short-fd"] = mode(nfds=1) + msg(SUB_ADD, sub_add())[:100]
    s["long"] = mode(nfds=2, max_fds=2) + msg(GROUP, group()) + b"\xff" * 72
    s["empty"] = mode()
    return s


def settings_seeds():
    group_spec, port_spec, tune = b"\x00", b"\x01", b"\x02"
    s = {}
    for i, spec in enumerate([
            "workers",
            "workers:policy=lifo,numa=spill:75,wake=fifo,max_running=4,backlog=1024",
            "g:policy=sticky",
            "g:numa=strict",
            "g.1-x_y:numa=interleave,wake=local-first",
            "rx:policy=local,numa=spill:100,backlog=16777216",
            "g:,,policy=rr,,",
            "x" * 31 + ":policy=least,max_running=1048576,wake=rr",
    ]):
        s["group-ok-%d" % i] = group_spec + spec.encode()
    for i, spec in enumerate([
            ".hidden", "", ":policy=rr", "g:policy=bogus", "g:numa=spill", "g:numa=spill:0",
            "g:numa=spill:101", "g:backlog=0", "g:max_running=1048577", "g:foo=bar", "g:policy",
            "g:=rr", "x" * 32 + ":policy=rr", "g:" + "k" * 40 + "=1",
    ]):
        s["group-bad-%d" % i] = group_spec + spec.encode()
    for i, spec in enumerate([
            "0",
            "net_null0:rxq=4,group=rx,snaplen=256,mode=spread",
            "1:rxq=64,mode=rss",
            "net_ring0:snaplen=0",
            "0000:03:00.0",
            "net_null0:" + "rxq=1," * 36 + "snaplen=2048",
    ]):
        s["port-ok-%d" % i] = port_spec + spec.encode()
    for i, spec in enumerate([
            "", ":rxq=1", "0:rxq=0", "0:rxq=65", "0:snaplen=2049", "0:group=.x", "0:group=",
            "0:mode=fast", "0:bogus", "d" * 64 + ":rxq=1",
    ]):
        s["port-bad-%d" % i] = port_spec + spec.encode()
    for i, args in enumerate([
            ["policy=rr"],
            ["policy=lifo", "max_running=0", "backlog=65536"],
            ["numa=spill:90", "wake=rr"],
            ["numa=interleave", "numa=strict", "wake=local-first"],
            [],
    ]):
        s["tune-ok-%d" % i] = tune + b"\0".join(a.encode() for a in args)
    for i, args in enumerate([
            ["policy=rr,wake=fifo"], [""], ["max_running=-1"], ["backlog=16777217"],
            ["policy=rr", "wake=sometimes"],
    ]):
        s["tune-bad-%d" % i] = tune + b"\0".join(a.encode() for a in args)
    return s


# fuzz_control (tests/fuzz/fuzz_control.c): byte 0 limits, byte 1 clients - 1,
# one byte per client (who), then operations: a 3-byte header (client, fds,
# op; fd kinds and patch level) and, for a message, its 128 bytes.
ROOT, OTHER, STRANGER = 0, 2, 3  # who: bits 0-1 the uid, bits 2-3 gid/groups, bit 4 refused
REFUSED = 0x10
FD_EVENT, FD_PIPE_R, FD_PIPE_W, FD_OWN_SOCK, FD_MEMFD, FD_UNIX, FD_UDP, FD_TIMER = range(8)
REQUESTS, HANG_UP, GONE, GONE_BATCH, CONNECT = 11, 12, 13, 14, 15
LIMIT_CLIENTS, LIMIT_QUEUES, LIMIT_SUBS, LIMIT_FDS, LIMIT_GROUPS, LIMIT_SLOTS, INJECT, ONE_BY_ONE = \
    (1 << i for i in range(8))
GSET_ALL, GROUP_NO_CREATE = 0x1F, 0x1


def control_input(limits=0, clients=(ROOT,)):
    return bytes([limits, len(clients) - 1]) + bytes(clients)


def op(slot, kind, arg=0):
    return bytes([slot | kind << 4, arg, 0])


def send(slot, message, fds=(), patch=1):
    """A message from the client in slot with fds of these kinds; patch 1
    keeps it as it is (magic and version are already right)."""
    kinds = 0
    for i, k in enumerate(fds):
        kinds |= k << (3 * i)
    extra = kinds | patch << 9
    return bytes([slot | len(fds) << 2, extra & 0xFF, extra >> 8]) + message


def request(rop, sub_id=0, sub_gen=0, flags=0, events=0, user_data=0, args=()):
    """struct onering_request, 64 bytes. With patch level 2 a small sub_id
    picks a subscription a reply named (its generation too, if small)."""
    a = list(args) + [0] * (5 - len(args))
    return struct.pack("<HHIIIQ5Q", rop, flags, sub_id, sub_gen, events, user_data, *a)


def requests(slot, reqs, queue=0, level=2, consume=False, scribble=None, no_bell=False):
    """Requests written into the submission ring of the client's queue-th
    queue (fuzz_control.c, client_requests); scribble = (where, what)."""
    h1 = queue | level << 3 | (0x20 if consume else 0) | (0x40 if scribble else 0) | \
        (0x80 if no_bell else 0)
    body = struct.pack("<QQ", *scribble) if scribble else b""
    return bytes([slot | REQUESTS << 4, h1, len(reqs)]) + body + b"".join(reqs)


def fuzz_hello(seq=1, inst="fuzz"):
    return msg(HELLO, hello(pid=1, inst=inst), seq=seq)


def control_seeds():
    s = {}
    attach = send(0, fuzz_hello())
    s["hello-open-sub-stats-close"] = control_input() + attach + \
        send(0, msg(QUEUE_OPEN, queue_open(), seq=2)) + \
        send(0, msg(SUB_ADD, sub_add(qid=1), seq=3), fds=[FD_EVENT]) + \
        send(0, msg(SUB_ADD, sub_add(qid=1, events=0, kind=EV_TIMER), seq=4)) + \
        send(0, msg(STATS, seq=5)) + \
        send(0, msg(QUEUE_CLOSE, struct.pack("<I", 1), seq=6))
    # A group made and tuned by GROUP, joined, a source aimed at it (ids:
    # default 1, cfg 2, locked 3, the first client group 4), then looked up.
    s["group-create-tune-join"] = control_input() + attach + \
        send(0, msg(GROUP, group("workers"), seq=2)) + \
        send(0, msg(QUEUE_OPEN, queue_open(ev=256, sq=64, group="workers", snap=128, words=4),
                    seq=3)) + \
        send(0, msg(SUB_ADD, sub_add(qid=1, group_id=4, smode=1), seq=4), fds=[FD_PIPE_R]) + \
        send(0, msg(GROUP, group("workers", gset=0, flags=GROUP_NO_CREATE), seq=5)) + \
        send(0, msg(STATS, seq=6)) + \
        send(0, msg(QUEUE_CLOSE, struct.pack("<I", 1), seq=7))
    # Other uids against the configured groups' lists; a refused peer.
    s["uids-acl-refused"] = control_input(clients=(ROOT, OTHER, STRANGER | 0x4, OTHER | REFUSED)) + \
        attach + send(1, fuzz_hello()) + send(2, fuzz_hello()) + send(3, fuzz_hello()) + \
        send(1, msg(QUEUE_OPEN, queue_open(group="cfg"), seq=2)) + \
        send(2, msg(QUEUE_OPEN, queue_open(group="cfg"), seq=2)) + \
        send(2, msg(GROUP, group("cfg"), seq=3)) + \
        send(1, msg(GROUP, group("locked"), seq=3)) + \
        send(0, msg(QUEUE_OPEN, queue_open(group="locked"), seq=2)) + \
        send(1, msg(SUB_ADD, sub_add(qid=1, group_id=3), seq=4), fds=[FD_UDP]) + \
        send(0, msg(STATS, seq=3))
    # A member dies with a source aimed at its group: the group ends later.
    s["hang-up-gone"] = control_input(clients=(ROOT, OTHER)) + attach + send(1, fuzz_hello()) + \
        send(1, msg(QUEUE_OPEN, queue_open(group="g1"), seq=2)) + \
        send(0, msg(QUEUE_OPEN, queue_open(), seq=2)) + \
        send(1, msg(SUB_ADD, sub_add(qid=1, group_id=4), seq=3), fds=[FD_TIMER]) + \
        op(1, HANG_UP) + send(1, msg(STATS, seq=4)) + op(0, HANG_UP) + op(0, GONE_BATCH) + \
        op(0, CONNECT, ROOT) + send(0, fuzz_hello()) + op(1, GONE)
    # Malformed and out-of-turn messages, wrong fds, refused sources.
    s["bad-messages"] = control_input(clients=(ROOT, ROOT)) + \
        send(1, msg(QUEUE_OPEN, queue_open(), seq=2)) + \
        send(0, msg(HELLO, hello(pid=1, inst="fuzz"), magic=0x4F4E524D), patch=0) + \
        send(0, fuzz_hello(inst="other")) + \
        send(1, msg(HELLO, struct.pack("<HHIQII", 9, 0, 1, 0, 0, 0) + name("fuzz"))) + \
        op(0, CONNECT, ROOT) + send(0, fuzz_hello(), fds=[FD_EVENT, FD_PIPE_W]) + \
        send(0, fuzz_hello()) + send(0, fuzz_hello(seq=2)) + \
        send(0, msg(QUEUE_OPEN, queue_open(), seq=3)) + \
        send(0, msg(SUB_ADD, sub_add(qid=1), seq=4), fds=[FD_OWN_SOCK]) + \
        send(0, msg(SUB_ADD, sub_add(qid=1), seq=5), fds=[FD_MEMFD]) + \
        send(0, msg(SUB_ADD, sub_add(qid=1), seq=6), fds=[FD_UNIX]) + \
        send(0, msg(SUB_ADD, sub_add(qid=1), seq=7)) + \
        send(0, msg(SUB_ADD, sub_add(qid=1, kind=EV_TIMER), seq=8), fds=[FD_EVENT]) + \
        send(0, msg(QUEUE_CLOSE, struct.pack("<I", 9), seq=9)) + \
        send(0, msg(77, seq=10)) + send(0, msg(PORT_TX, port_tx(), seq=11))
    # Every per-client limit small, the queue table (12) filled.
    s["quotas"] = control_input(LIMIT_CLIENTS | LIMIT_QUEUES | LIMIT_SUBS | LIMIT_FDS | LIMIT_GROUPS |
                                LIMIT_SLOTS, clients=(ROOT, OTHER, ROOT)) + \
        attach + send(1, fuzz_hello()) + send(2, fuzz_hello()) + \
        b"".join(send(0, msg(QUEUE_OPEN, queue_open(ev=1024, sq=1024), seq=2 + i)) for i in range(3)) + \
        send(0, msg(GROUP, group("g1"), seq=6)) + send(0, msg(GROUP, group("g2"), seq=7)) + \
        b"".join(send(0, msg(SUB_ADD, sub_add(qid=1), seq=8 + i), fds=[FD_EVENT]) for i in range(4)) + \
        b"".join(send(0, msg(SUB_ADD, sub_add(qid=1, kind=EV_TIMER, events=0), seq=12 + i))
                 for i in range(2))
    s["queue-table-full"] = control_input(clients=(ROOT, ROOT)) + attach + send(1, fuzz_hello()) + \
        b"".join(send(i // 7, msg(QUEUE_OPEN, queue_open(ev=64, sq=64), seq=2 + i)) for i in range(14))
    # Who may join and tune: the default group (no list), a root-made group,
    # "cfg" through a supplementary gid; a client's group quota on open.
    s["join-tune-permissions"] = control_input(LIMIT_GROUPS, clients=(ROOT, OTHER, STRANGER | 0x8)) + \
        attach + send(1, fuzz_hello()) + send(2, fuzz_hello()) + \
        send(1, msg(QUEUE_OPEN, queue_open(group="default"), seq=2)) + \
        send(1, msg(GROUP, group("default"), seq=3)) + \
        send(0, msg(GROUP, group("g1"), seq=2)) + \
        send(1, msg(QUEUE_OPEN, queue_open(group="g1"), seq=4)) + \
        send(2, msg(QUEUE_OPEN, queue_open(group="cfg"), seq=2)) + \
        send(2, msg(GROUP, group("cfg", gset=0x1), seq=3)) + \
        send(1, msg(QUEUE_OPEN, queue_open(group="g2"), seq=5)) + \
        send(1, msg(QUEUE_OPEN, queue_open(group="g3"), seq=6))
    # The subscription table (16 entries, ids 1..15) fills with timers.
    s["sub-table-full"] = control_input() + attach + send(0, msg(QUEUE_OPEN, queue_open(), seq=2)) + \
        b"".join(send(0, msg(SUB_ADD, sub_add(qid=1, events=0, kind=EV_TIMER), seq=3 + i))
                 for i in range(16))
    s["open-fd-quota"] = control_input(LIMIT_FDS) + attach + \
        b"".join(send(0, msg(QUEUE_OPEN, queue_open(ev=64, sq=64), seq=2 + i)) for i in range(4))
    s["port-tx-inject"] = control_input(INJECT | ONE_BY_ONE, clients=(ROOT, OTHER)) + attach + \
        send(0, msg(PORT_TX, port_tx(), seq=2)) + send(0, msg(PORT_TX, port_tx(length=8), seq=3)) + \
        send(1, fuzz_hello()) + send(1, msg(STATS, seq=2))
    # Submission-ring requests (level 2: sub_id 1 and 2 pick the first and
    # second subscription a reply named): a timer armed in the past fires,
    # the fd source re-armed, changed and deleted, a post to the default
    # group (id 1), a watched word, then the records read and more.
    open_sub = attach + send(0, msg(QUEUE_OPEN, queue_open(words=4), seq=2)) + \
        send(0, msg(SUB_ADD, sub_add(qid=1, smode=1), seq=3), fds=[FD_EVENT]) + \
        send(0, msg(SUB_ADD, sub_add(qid=1, events=0, kind=EV_TIMER), seq=4))
    s["requests-timer-fd-post"] = control_input() + open_sub + \
        requests(0, [request(REQ_TIMER_ARM, 2, flags=TIMER_ABSTIME, args=(1, 0)),
                     request(REQ_REARM, 1, events=EPOLLIN),
                     request(REQ_MOD, 1, events=EPOLLIN | 0x4),
                     request(REQ_POST, 1, user_data=7, args=(1, 2)),
                     request(REQ_WORD_WATCH, args=(0, 0)),
                     request(REQ_NOP)]) + \
        requests(0, [request(REQ_TIMER_ARM, 2, args=(1000, 1000)), request(REQ_DEL, 1)],
                 consume=True) + \
        requests(0, [request(REQ_TIMER_ARM, 2, args=(0, 0))], consume=True, no_bell=True) + \
        send(0, msg(QUEUE_CLOSE, struct.pack("<I", 1), seq=5))
    # A completion-mode UDP socket: sends from the stream area (level 2
    # puts offsets in it), a buffer given back, a half-close, an abort.
    s["requests-stream"] = control_input() + attach + \
        send(0, msg(QUEUE_OPEN, queue_open(rx=4, tx=4, buf=4096), seq=2)) + \
        send(0, msg(SUB_ADD, sub_add(qid=1, events=0, kind=EV_STREAM), seq=3), fds=[FD_UDP]) + \
        requests(0, [request(REQ_SEND, 1, args=(16384, 100)),
                     request(REQ_SEND, 1, args=(16384 + 4096, 1)),
                     request(REQ_STREAM_DONE, args=(1, 0)),
                     request(REQ_CLOSE, 1, flags=0x1)]) + \
        requests(0, [request(REQ_CLOSE, 1, flags=0x2)], consume=True)
    # Posts that wait: "locked" (id 3, root may post) has no member and a
    # backlog of 2, so the third post blocks its poster's ring (level 1
    # keeps the group id as it is); then the queue closes with posts
    # waiting, and another poster waits behind the same backlog.
    s["requests-posts-blocked"] = control_input(clients=(ROOT, ROOT)) + attach + \
        send(0, msg(QUEUE_OPEN, queue_open(sq=64), seq=2)) + \
        send(1, fuzz_hello()) + send(1, msg(QUEUE_OPEN, queue_open(sq=64), seq=2)) + \
        requests(0, [request(REQ_POST, 3, user_data=i, args=(i,)) for i in range(8)], level=1) + \
        requests(1, [request(REQ_POST, 3, user_data=i, args=(i,)) for i in range(4)], level=1) + \
        requests(0, [request(REQ_NOP)], level=1, no_bell=True) + \
        send(0, msg(QUEUE_CLOSE, struct.pack("<I", 1), seq=3)) + \
        requests(1, [request(REQ_POST, 3, args=(9,))], level=1, consume=True)
    # What a hostile client writes in its shared memory: garbage requests,
    # a tail far past the head, an event head moved back.
    s["requests-garbage"] = control_input(clients=(ROOT, ROOT)) + open_sub + \
        send(1, fuzz_hello()) + send(1, msg(QUEUE_OPEN, queue_open(), seq=2)) + \
        requests(0, [request(REQ_TIMER_ARM, 2, flags=TIMER_ABSTIME, args=(1, 0))]) + \
        requests(1, [request(REQ_NOP)], scribble=(1, 1 << 62)) + \
        requests(1, [], scribble=(0, 1 << 40)) + \
        requests(0, [request(0x77, 1, flags=0xFFFF)], level=0) + \
        send(1, msg(STATS, seq=3))
    return s


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if not f.startswith(("regress-", "manual-")):
            os.unlink(os.path.join(d, f))
    for n, data in sorted(seeds.items()):
        with open(os.path.join(d, n), "wb") as f:
            f.write(data)
    print("%s: %d seeds" % (d, len(seeds)), file=sys.stderr)


if __name__ == "__main__":
    for m in proto_seeds().values():
        assert len(m) in (1, 1 + 100, 1 + 128, 1 + 200), len(m)
    write("fuzz_control", control_seeds())
    write("fuzz_proto", proto_seeds())
    write("fuzz_settings", settings_seeds())
