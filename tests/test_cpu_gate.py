"""engine/cpu.py: urgent speech work holds the decode loop off between steps, and never for long."""

import threading
import time

from omnimini.engine.cpu import CpuGate


def test_nothing_urgent_means_no_wait():
    gate = CpuGate()
    t = time.monotonic()
    assert gate.yield_to_urgent(timeout=1.0) is False
    assert time.monotonic() - t < 0.05


def test_decode_loop_waits_until_urgent_work_ends():
    gate = CpuGate()
    entered, release = threading.Event(), threading.Event()

    def speech():
        with gate.urgent():
            entered.set()
            release.wait(5)

    worker = threading.Thread(target=speech)
    worker.start()
    entered.wait(5)
    assert gate.busy
    threading.Timer(0.2, release.set).start()
    t = time.monotonic()
    assert gate.yield_to_urgent(timeout=5.0) is True
    waited = time.monotonic() - t
    worker.join(5)
    assert 0.15 < waited < 2.0          # it waited for the urgent section, and no longer
    assert not gate.busy


def test_nested_urgent_sections_all_count():
    gate = CpuGate()
    with gate.urgent():
        with gate.urgent():
            pass
        assert gate.busy                # the outer section still runs
    assert not gate.busy


def test_a_stuck_urgent_section_only_delays_decoding():
    gate = CpuGate()
    with gate.urgent():
        t = time.monotonic()
        assert gate.yield_to_urgent(timeout=0.2) is True
        assert 0.15 < time.monotonic() - t < 1.0
