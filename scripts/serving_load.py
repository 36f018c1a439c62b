"""The open-loop load generator of the serving benchmarks: Poisson arrivals per model at a
given rate for a given time, each request on its own (bounded in flight), over aiohttp,
with binary tensors; what came back, per model and rate, as a `Level`."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import aiohttp
import numpy as np

from tunesvc.serving.client import binary_request, made_up_inputs

MAX_IN_FLIGHT = 256  # open loop, but bounded: beyond this the generator drops arrivals


@dataclass
class Level:
    arrangement: str
    model: str
    offered_rate: float
    seconds: float
    answered: int = 0
    refused: int = 0  # 503
    failed: int = 0  # anything else, or dropped by the generator
    latencies_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        lat = np.array(self.latencies_ms) if self.latencies_ms else np.array([np.nan])
        return {"arrangement": self.arrangement, "model": self.model,
                "offered_rate": self.offered_rate, "throughput": self.answered / self.seconds,
                "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
                "answered": self.answered, "refused": self.refused, "failed": self.failed}


async def request_body(session: aiohttp.ClientSession, url: str,
                       model: str) -> tuple[bytes, dict[str, str]]:
    async with session.get(f"{url}/v2/models/{model}") as answer:
        return binary_request(made_up_inputs(await answer.json()))


async def offer(session: aiohttp.ClientSession, url: str, level: Level,
                body: tuple[bytes, dict[str, str]], seed: int) -> None:
    """Poisson arrivals at the level's rate for its seconds; each request on its own."""
    rng, loop = random.Random(seed), asyncio.get_running_loop()
    start, at, tasks = loop.time(), 0.0, []
    while True:
        at += rng.expovariate(level.offered_rate)
        if at > level.seconds:
            break
        await asyncio.sleep(max(0.0, start + at - loop.time()))
        if sum(not t.done() for t in tasks) >= MAX_IN_FLIGHT:
            level.failed += 1
            continue
        tasks.append(asyncio.create_task(one(session, url, level, body)))
    await asyncio.gather(*tasks)


async def one(session: aiohttp.ClientSession, url: str, level: Level,
              body: tuple[bytes, dict[str, str]]) -> None:
    sent = time.perf_counter()
    try:
        async with session.post(f"{url}/v2/models/{level.model}/infer", data=body[0],
                                headers=body[1]) as answer:
            await answer.read()
            status = answer.status
    except aiohttp.ClientError:
        status = 0
    if status == 200:
        level.answered += 1
        level.latencies_ms.append((time.perf_counter() - sent) * 1e3)
    elif status == 503:
        level.refused += 1
    else:
        level.failed += 1


async def run_levels(url: str, arrangement: str, rates: dict[str, list[float]],
                     seconds: float) -> list[Level]:
    """Each step offers every model its rate at once, for `seconds`."""
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT * 2)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        bodies = {m: await request_body(session, url, m) for m in rates}
        for model in rates:  # warm: one call each
            await one(session, url, Level(arrangement, model, 1, 1), bodies[model])
        done: list[Level] = []
        for step in range(len(next(iter(rates.values())))):
            levels = [Level(arrangement, m, rates[m][step], seconds) for m in rates]
            await asyncio.gather(*(offer(session, url, lv, bodies[lv.model], step)
                                   for lv in levels))
            done += levels
            for lv in levels:
                s = lv.summary()
                print(f"  {arrangement:26} {lv.model:14} {lv.offered_rate:5.1f}/s -> "
                      f"{s['throughput']:5.1f}/s p50 {s['p50_ms']:7.1f} p99 {s['p99_ms']:7.1f} ms "
                      f"503 {lv.refused} failed {lv.failed}", flush=True)
        return done
