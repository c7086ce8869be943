"""The workers' bus (node/bus.py) over a real PostgreSQL: presence, frames to a wallet on another worker,
answers, a worker that starts again, a worker that died (pruned), and a payload too large for NOTIFY."""

from __future__ import annotations

import asyncio

from perun_vyper.node.bus import MAX_PAYLOAD, PostgresBus
from tests.node.conftest import run

ALICE = "0x" + "aa" * 20


class Worker:
    """One bus and what reached it: frames delivered to its connections, answers reported."""

    def __init__(self, url: str, name: str, local: list[str] | None = None) -> None:
        self.bus = PostgresBus(url, name)
        self.local = local or []
        self.frames: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.answers: list[tuple[bytes, int]] = []

    async def start(self) -> PostgresBus:
        async def deliver(address: str, frame: str) -> None:
            await self.frames.put((address, frame))

        self.bus.on_answer(lambda channel, version: self.answers.append((channel, version)))
        await self.bus.start(deliver, lambda: self.local)
        return self.bus


async def _until(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within 5 s"
        await asyncio.sleep(0.02)


def test_bus__presence_frames_answers_restart_prune(postgres):
    async def scenario():
        w1, w2 = Worker(postgres, "w1"), Worker(postgres, "w2")
        bus1, bus2 = await w1.start(), await w2.start()
        try:
            assert not bus2.online_elsewhere(ALICE)
            await bus1.announce(ALICE, True)
            await _until(lambda: bus2.online_elsewhere(ALICE))
            assert not bus1.online_elsewhere(ALICE)  # a worker does not count itself
            await bus2.send(ALICE, '{"jsonrpc":"2.0","method":"channel.updated"}')
            assert await asyncio.wait_for(w1.frames.get(), 5) == (ALICE, '{"jsonrpc":"2.0","method":"channel.updated"}')
            await bus2.answered(b"\x01" * 32, 7)
            await _until(lambda: w1.answers == [(b"\x01" * 32, 7)])
            assert w2.answers == []  # its own post is not delivered back to it
            # Too large for NOTIFY: dropped (logged), nothing delivered, the bus keeps working.
            await bus2.send(ALICE, "x" * MAX_PAYLOAD)
            await bus2.send(ALICE, "small")
            assert await asyncio.wait_for(w1.frames.get(), 5) == (ALICE, "small")
            # w1 dies and starts again under its name, with nobody logged in: its old presence is void.
            await bus1.close()
            w1 = Worker(postgres, "w1")
            bus1 = await w1.start()
            await _until(lambda: not bus2.online_elsewhere(ALICE))
            # w3 holds Alice's connection (announced to nobody yet); a newcomer w4 learns it from its hello.
            w3 = Worker(postgres, "w3", local=[ALICE])
            bus3 = await w3.start()
            w4 = Worker(postgres, "w4")
            bus4 = await w4.start()
            await _until(lambda: bus4.online_elsewhere(ALICE))
            # w3's lease lapsed (it died): w4 forgets its addresses at its next prune.
            bus4.prune(["w1", "w2", "w4"])
            assert not bus4.online_elsewhere(ALICE)
            await bus3.close()
            await bus4.close()
        finally:
            await bus1.close()
            await bus2.close()

    run(scenario())
