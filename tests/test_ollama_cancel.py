"""Stopping a stream closes the HTTP response, so the server sees the disconnect and stops."""

import asyncio
import gc

import pytest

from gleitzeit_nb.errors import StreamError

from .conftest import chat_params


async def test_break_out_of_loop_disconnects(provider, sim):
    sim.token_delay = 0.02
    async with await provider.stream_request("chat", chat_params("[[tokens=500]]")) as stream:
        async for chunk in stream:
            if stream.chunks == 5:
                break
    assert sim.wait_for_disconnects(1, timeout=1.0)
    assert sim.disconnects[0].chunks_sent < 50
    assert len(stream.text.split()) == 5  # the text so far is kept


async def test_break_without_context_manager_disconnects(provider, sim):
    sim.token_delay = 0.02
    seen = 0
    async for chunk in provider.stream_request("chat", chat_params("[[tokens=500]]")):
        seen += 1
        if seen == 3:
            break
    gc.collect()
    for _ in range(20):  # the generator's cleanup is scheduled on the loop
        await asyncio.sleep(0.01)
    assert sim.wait_for_disconnects(1, timeout=1.0)


async def test_break_out_of_a_held_stream_disconnects(provider, sim):
    """No context manager, the stream kept in a variable: leaving the loop still closes it."""
    sim.token_delay = 0.02
    stream = await provider.stream_request("chat", chat_params("[[tokens=500]]"))
    async for chunk in stream:
        if stream.chunks == 3:
            break
    for _ in range(50):  # asyncio closes the dropped generator on the loop's next turns
        if sim.disconnects:
            break
        await asyncio.sleep(0.02)
    assert sim.wait_for_disconnects(1, timeout=0.1)
    assert sim.disconnects[0].chunks_sent < 50
    assert len(stream.text.split()) == 3  # the text so far is kept


async def test_aclose_disconnects(provider, sim):
    sim.token_delay = 0.02
    stream = await provider.stream_request("chat", chat_params("[[tokens=500]]"))
    await stream.__anext__()
    await stream.aclose()
    assert sim.wait_for_disconnects(1, timeout=1.0)


async def test_cancel_task_mid_stream_disconnects(provider, sim):
    sim.token_delay = 0.02
    task = asyncio.ensure_future(provider.handle_request("chat", chat_params("[[tokens=500]]")))
    while sim.active == 0:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert sim.wait_for_disconnects(1, timeout=1.0)


async def test_cancel_before_first_byte_disconnects(provider, sim):
    sim.inject("stall_before", seconds=3)
    task = asyncio.ensure_future(provider.handle_request("chat", chat_params()))
    while not sim.requests:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert sim.wait_for_disconnects(1, timeout=1.0)


async def test_connection_reused_after_complete_stream(provider, sim):
    for _ in range(3):
        await provider.handle_request("chat", chat_params())
        stream = await provider.stream_request("chat", chat_params())
        await stream.collect()
    assert sim.disconnects == []
    # The body is read to its end, so the one keep-alive connection goes back to the pool.
    pool = provider._transport.client()._transport._pool
    assert [c.is_idle() for c in pool.connections] == [True]


async def test_iterating_again_after_the_end_or_after_aclose(provider, sim):
    stream = await provider.stream_request("chat", chat_params("[[tokens=5]]"))
    await stream.collect()
    assert [c async for c in stream] == [] and (await stream.collect()).done  # nothing more
    sim.token_delay = 0.02
    stream = await provider.stream_request("chat", chat_params("[[tokens=200]]"))
    await stream.__anext__()
    await stream.aclose()
    with pytest.raises(StreamError, match="was closed after 1 chunks") as info:
        async for _ in stream:
            pass
    assert info.value.partial == stream.text
    stream = await provider.stream_request("chat", chat_params("[[tokens=200]]"))
    async for _ in stream:
        break
    with pytest.raises(StreamError, match="was closed after 1 chunks"):  # not httpx's error
        async for _ in stream:
            pass
