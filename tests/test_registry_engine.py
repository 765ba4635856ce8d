"""Registry, tasks and the engine — the design guide's own examples, over real HTTP."""

import asyncio

import pytest

from gleitzeit_nb.core import (
    LLM_PROTOCOL_V1,
    ExecutionEngine,
    InvalidParamsError,
    ModelNotFoundError,
    ProtocolProviderRegistry,
    ProviderUnavailableError,
    RegistryError,
    Task,
    TaskStatus,
)
from gleitzeit_nb.providers import OllamaProvider

from .conftest import chat_params


async def test_guide_registration_and_task(sim):
    # The guide's example, unchanged apart from import paths.
    registry = ProtocolProviderRegistry()
    registry.register_protocol(LLM_PROTOCOL_V1)
    ollama_provider = OllamaProvider(provider_id="ollama-main", base_url=sim.url)
    await ollama_provider.initialize()
    registry.register_provider(provider_id="ollama-main", protocol_id="llm/v1",
                               provider_instance=ollama_provider)
    task = Task(id="generate-text", protocol="llm/v1", method="chat",
                params={"model": "llama3.2:latest", "messages": [{"role": "user", "content": "Hello!"}]})
    result = await ExecutionEngine(registry).execute_task(task)
    assert result.status == TaskStatus.COMPLETED
    assert result.result["response"] and result.result["tokens_used"] > 0
    assert result.error is None and result.provider_id == "ollama-main"
    assert result.duration > 0
    await ollama_provider.shutdown()


def test_registry_errors():
    registry = ProtocolProviderRegistry()
    p = OllamaProvider(base_url="http://127.0.0.1:1")
    with pytest.raises(RegistryError, match="Protocol 'llm/v1' is not registered"):
        registry.register_provider(provider_id="a", protocol_id="llm/v1", provider_instance=p)
    registry.register_protocol(LLM_PROTOCOL_V1)
    with pytest.raises(RegistryError, match="No provider is registered for protocol 'llm/v1'"):
        registry.select_provider("llm/v1")
    registry.register_provider(provider_id="a", protocol_id="llm/v1", provider_instance=p)
    with pytest.raises(RegistryError, match="already registered"):
        registry.register_provider(provider_id="a", protocol_id="llm/v1", provider_instance=p)
    assert registry.get_providers("llm/v1") == [p]
    assert registry.unregister_provider("a") is p
    assert registry.get_providers("llm/v1") == []


def test_selection_policy_healthy_then_least_in_flight():
    registry = ProtocolProviderRegistry()
    registry.register_protocol(LLM_PROTOCOL_V1)
    a, b, c = (OllamaProvider(provider_id=n, base_url="http://127.0.0.1:1") for n in "abc")
    for p in (a, b, c):
        registry.register_provider(provider_id=p.provider_id, protocol_id="llm/v1", provider_instance=p)
    assert registry.select_provider("llm/v1") is a          # tie: registration order
    a.in_flight = 2
    b.in_flight = 1
    assert registry.select_provider("llm/v1") is c          # fewest in flight
    registry.mark_health("c", False)
    assert registry.select_provider("llm/v1") is b          # healthy before unhealthy
    assert registry.select_provider("llm/v1", exclude={"b"}) is a


async def test_failed_task_never_raises_and_keeps_typed_error(sim):
    registry = ProtocolProviderRegistry()
    registry.register_protocol(LLM_PROTOCOL_V1)
    async with OllamaProvider(base_url=sim.url) as p:
        registry.register_provider(provider_id="o", protocol_id="llm/v1", provider_instance=p)
        engine = ExecutionEngine(registry)
        missing = await engine.execute_task(Task(params=chat_params(model="nope:1b")))
        invalid = await engine.execute_task(Task(params={"model": "m"}))
    assert missing.status == TaskStatus.FAILED and isinstance(missing.error, ModelNotFoundError)
    assert invalid.status == TaskStatus.FAILED and isinstance(invalid.error, InvalidParamsError)
    assert p.in_flight == 0


async def test_failover_to_a_reachable_provider(sim, dead_url):
    registry = ProtocolProviderRegistry()
    registry.register_protocol(LLM_PROTOCOL_V1)
    dead = OllamaProvider(provider_id="dead", base_url=dead_url, max_retries=0)
    live = OllamaProvider(provider_id="live", base_url=sim.url)
    registry.register_provider(provider_id="dead", protocol_id="llm/v1", provider_instance=dead)
    registry.register_provider(provider_id="live", protocol_id="llm/v1", provider_instance=live)
    result = await ExecutionEngine(registry).execute_task(Task(params=chat_params()))
    assert result.status == TaskStatus.COMPLETED and result.provider_id == "live"
    assert result.attempts == 2 and not registry.is_healthy("dead")
    # Pinned to the dead provider: no failover, the typed error is kept.
    pinned = await ExecutionEngine(registry).execute_task(Task(params=chat_params(), provider_id="dead"))
    assert isinstance(pinned.error, ProviderUnavailableError)
    await live.shutdown()


async def test_failover_when_a_host_never_accepts_the_connection(sim, blackhole_url):
    registry = ProtocolProviderRegistry()
    registry.register_protocol(LLM_PROTOCOL_V1)
    silent = OllamaProvider(provider_id="silent", base_url=blackhole_url, connect_timeout=0.3,
                            max_retries=0)
    live = OllamaProvider(provider_id="live", base_url=sim.url)
    registry.register_provider(provider_id="silent", protocol_id="llm/v1",
                               provider_instance=silent)
    registry.register_provider(provider_id="live", protocol_id="llm/v1", provider_instance=live)
    engine = ExecutionEngine(registry)
    first = await engine.execute_task(Task(params=chat_params()))
    assert first.ok and first.provider_id == "live" and first.attempts == 2
    assert not registry.is_healthy("silent")
    second = await engine.execute_task(Task(params=chat_params()))
    assert second.ok and second.attempts == 1  # the unhealthy host is no longer tried first
    await live.shutdown()
    await silent.shutdown()


async def test_check_health_while_providers_come_and_go(sim, dead_url):
    registry = ProtocolProviderRegistry()
    registry.register_protocol(LLM_PROTOCOL_V1)
    for i in range(3):
        registry.register_provider(provider_id=f"p{i}", protocol_id="llm/v1",
                                   provider_instance=OllamaProvider(base_url=sim.url))
    check = asyncio.ensure_future(registry.check_health())
    await asyncio.sleep(0)  # the check is at its first await
    registry.unregister_provider("p1")
    registry.register_provider(provider_id="p3", protocol_id="llm/v1",
                               provider_instance=OllamaProvider(base_url=dead_url))
    registry.register_provider(provider_id="p4", protocol_id="llm/v1",
                               provider_instance=OllamaProvider(base_url=dead_url))
    report = await check
    assert {"p0", "p2"} <= set(report) and not registry.is_healthy("p1")


async def test_execute_many_keeps_order_and_bounds_concurrency(sim):
    sim.token_delay = 0.01
    registry = ProtocolProviderRegistry()
    registry.register_protocol(LLM_PROTOCOL_V1)
    async with OllamaProvider(base_url=sim.url) as p:
        registry.register_provider(provider_id="o", protocol_id="llm/v1", provider_instance=p)
        tasks = [Task(id=f"t{i}", params=chat_params(f"question {i} [[tokens=5]]")) for i in range(8)]
        results = await ExecutionEngine(registry).execute_many(tasks, concurrency=3)
    assert [r.task_id for r in results] == [f"t{i}" for i in range(8)]
    assert all(r.ok for r in results)
    assert sim.max_active == 3
    prompts = [r.body["messages"][-1]["content"] for r in sim.requests if r.path == "/api/chat"]
    assert sorted(prompts) == sorted(t.params["messages"][0]["content"] for t in tasks)


async def test_execute_many_cancel_closes_every_stream(sim):
    sim.token_delay = 0.05
    registry = ProtocolProviderRegistry()
    registry.register_protocol(LLM_PROTOCOL_V1)
    async with OllamaProvider(base_url=sim.url) as p:
        registry.register_provider(provider_id="o", protocol_id="llm/v1", provider_instance=p)
        tasks = [Task(params=chat_params(f"q{i} [[tokens=200]]")) for i in range(4)]
        job = asyncio.ensure_future(ExecutionEngine(registry).execute_many(tasks, concurrency=4))
        while sim.active < 4:
            await asyncio.sleep(0.02)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        assert sim.wait_for_disconnects(4, timeout=1.0)
        assert p.in_flight == 0
