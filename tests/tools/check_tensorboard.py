#!/usr/bin/env python3
"""Reads an event file written by tests/logs/tools/tensorboard_write.cpp with TensorBoard's own
readers (tensorboard.backend.event_processing) and checks every value, plus the TFRecord framing
with an independent CRC-32C. Usage: check_tensorboard.py EVENT_FILE [TEXT_FILE]. Exit 0 = all good."""
import math
import struct
import sys

import numpy as np
from tensorboard.backend.event_processing import event_accumulator, event_file_loader
from tensorboard.util import tensor_util


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def fail(msg):
    print("check_tensorboard: FAIL: " + msg)
    sys.exit(1)


def main():
    path = sys.argv[1]
    text = ("ROMEO:\nBut soft, what light through yonder window breaks? \u2713 \u00e9\n")
    if len(sys.argv) > 2:
        text = open(sys.argv[2], "rb").read().decode("utf-8")
    assert crc32c(b"123456789") == 0xE3069283

    # Framing: length, masked CRC of the length, payload, masked CRC of the payload.
    raw = open(path, "rb").read()
    pos, records = 0, 0
    while pos < len(raw):
        (n,) = struct.unpack_from("<Q", raw, pos)
        (c1,) = struct.unpack_from("<I", raw, pos + 8)
        payload = raw[pos + 12:pos + 12 + n]
        (c2,) = struct.unpack_from("<I", raw, pos + 12 + n)
        if c1 != masked(raw[pos:pos + 8]) or c2 != masked(payload):
            fail("bad CRC in record %d" % records)
        pos += 16 + n
        records += 1
    if records != 1 + 200 + 20 + 6 + 2:
        fail("%d records" % records)

    events = list(event_file_loader.EventFileLoader(path).Load())
    if events[0].file_version != "brain.Event:2":
        fail("first event is not the file version: %r" % events[0])

    ea = event_accumulator.EventAccumulator(path, size_guidance={event_accumulator.SCALARS: 0,
                                                                 event_accumulator.TENSORS: 0})
    ea.Reload()
    tags = ea.Tags()
    if sorted(tags["scalars"]) != ["edge", "train/loss", "train/lr"]:
        fail("scalar tags %r" % tags["scalars"])

    def expect(tag, pairs):
        got = ea.Scalars(tag)
        if len(got) != len(pairs):
            fail("%s: %d values, expected %d" % (tag, len(got), len(pairs)))
        for ev, (step, value, wall) in zip(got, pairs):
            want = float(np.float32(value))
            if ev.step != step or ev.value != want or ev.wall_time != wall:
                fail("%s step %d: got (%d, %r, %r), expected (%d, %r, %r)"
                     % (tag, step, ev.step, ev.value, ev.wall_time, step, want, wall))

    expect("train/loss", [(s, 5.5 * math.exp(-s / 30.0) + 0.001 * s, 1.7e9 + s / 4.0) for s in range(200)])
    expect("train/lr", [(s, 3e-4 * (s + 1) / 200.0, 1.7e9 + s / 4.0) for s in range(0, 200, 10)])
    expect("edge", [(s, v, 1.7e9) for s, v in enumerate([0.0, -1.5, 1e-30, 3.0e38, 123456.789, -7e-8])])

    if tags["tensors"] != ["samples"]:
        fail("tensor tags %r" % tags["tensors"])
    texts = ea.Tensors("samples")
    want = [(100, text, 1.7e9 + 25.0), (200, text + "(end)", 1.7e9 + 50.0)]
    if len(texts) != 2:
        fail("%d texts" % len(texts))
    for ev, (step, s, wall) in zip(texts, want):
        arr = tensor_util.make_ndarray(ev.tensor_proto)
        got = arr.item().decode("utf-8")
        if ev.step != step or got != s or ev.wall_time != wall:
            fail("text at step %d: %r (len %d), expected len %d" % (ev.step, got[:80], len(got), len(s)))
    meta = ea.SummaryMetadata("samples")
    if meta.plugin_data.plugin_name != "text":
        fail("text plugin name %r" % meta.plugin_data.plugin_name)
    print("check_tensorboard: ok (%d records, %d scalars, %d texts)" % (records, 226, 2))


main()
