"""The target's write log and what a state covers of it; the views a rebuild drops; a
DuckDB file on a container's own layer. No I/O but a temporary folder."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from dbt_runner.report.parts import Horizon, Target
from dbt_runner.state import ledger
from dbt_runner.state.touched import dropped_views, touched
from dbt_runner.state.writes import KEEP, LISTED, Write, WriteLog, WriteLogStore
from dbt_runner.storage import FileStorage
from dbt_runner.workspace.target import on_container_layer, vanishes
from tests.support import run_report

TARGET = Target(adapter="postgres", location="db:5432", database="analytics", schema="dev")


def write(run_id: str, env: str = "dev", **fields: object) -> Write:
    return Write.model_validate({"seq": 0, "run_id": run_id, "env": env, "job": "full"} | fields)


def test_a_log_keeps_every_concurrent_append(tmp_path: Path) -> None:
    """Eight commands beginning at once: each gets its own number, none is lost."""
    store = WriteLogStore(FileStorage(str(tmp_path)), "shop")
    seqs: list[int] = []
    lock = threading.Lock()

    def begin(index: int) -> None:
        entry = store.begin(TARGET, write(f"r{index}"))
        with lock:
            seqs.append(entry.seq)

    threads = [threading.Thread(target=begin, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log = store.read(TARGET)
    assert log is not None and sorted(seqs) == list(range(1, 9)) and log.last_seq == 8
    assert {w.run_id for w in log.writes} == {f"r{i}" for i in range(8)}
    assert all(w.open for w in log.writes)

    store.end(TARGET, seqs[0], ["fqn:shop.b", "fqn:shop.a", "fqn:shop.a"], None)
    closed = next(w for w in store.read(TARGET).writes if w.seq == seqs[0])  # type: ignore[union-attr]
    assert not closed.open and closed.nodes == ["fqn:shop.a", "fqn:shop.b"] and not closed.whole


def test_a_write_of_many_relations_is_kept_as_whole(tmp_path: Path) -> None:
    store = WriteLogStore(FileStorage(str(tmp_path)), "shop")
    entry = store.begin(TARGET, write("big"))
    store.end(TARGET, entry.seq, [f"fqn:shop.m{i}" for i in range(LISTED + 1)], None)
    [closed] = store.read(TARGET).writes  # type: ignore[union-attr]
    assert closed.whole and closed.nodes == [] and str(LISTED + 1) in str(closed.why_whole)


def test_the_log_keeps_its_last_writes_and_says_when_it_no_longer_reaches_back(
    tmp_path: Path,
) -> None:
    store = WriteLogStore(FileStorage(str(tmp_path)), "shop")
    for index in range(KEEP + 5):
        store.end(TARGET, store.begin(TARGET, write(f"r{index}")).seq, [], None)
    log = store.read(TARGET)
    assert log is not None and len(log.writes) == KEEP and log.writes[0].seq == 6
    assert log.reaches_back_to(5) and not log.reaches_back_to(4)
    why = ledger.written_since(Horizon(seq=4), log)
    assert why is not None and "no longer reaches back" in why


def test_what_a_state_covers_of_its_targets_writes() -> None:
    writes = [
        write("before", seq=1, open=False, nodes=["fqn:shop.a"]),
        write("live-then", "ci", seq=2, open=False, nodes=["fqn:shop.b"]),
        write("state-run", seq=3, open=False, whole=True, why_whole="full job"),
        write("after", "ci", seq=4, open=False, nodes=["fqn:shop.c"]),
    ]
    log = WriteLog(target=TARGET, last_seq=4, writes=writes)
    horizon = Horizon(seq=2, open=[2], covers=["state-run"])
    assert [w.run_id for w in log.after(horizon)] == ["live-then", "after"]
    assert ledger.written_since(horizon, log) is None  # each says what it touched

    killed = log.model_copy(update={"writes": [*writes, write("killed", seq=5)], "last_seq": 5})
    why = ledger.written_since(horizon, killed)
    assert why is not None and "run killed (dev, full" in why and "has not said" in why
    rewrote = [*writes, write("other-env", "qa", seq=5, open=False, whole=True, why_whole="x")]
    why = ledger.written_since(horizon, log.model_copy(update={"writes": rewrote}))
    assert why is not None and "run other-env (qa" in why and "rewrote its target" in why


def test_a_retry_completes_a_run_only_if_nothing_else_wrote_since() -> None:
    started = datetime(2026, 12, 1, tzinfo=UTC)
    failed = run_report(run_id="A", started_at=started)
    own = write("A", seq=3, open=False, nodes=["fqn:shop.m1"])
    retry = write("R1", seq=4, open=False, nodes=["fqn:shop.m2"], completes=["A"])
    log = WriteLog(target=TARGET, last_seq=4, writes=[own, retry])
    assert ledger.written_after(failed, log) is None  # a retry of it is it
    assert ledger.written_after(failed, None) is None  # no state kept: nothing to promote

    full = write("B", seq=5, open=False, whole=True, why_whole="full job")
    why = ledger.written_after(failed, log.model_copy(update={"writes": [own, retry, full]}))
    assert why is not None and why.startswith("run B (dev, full") and "after run A" in why
    killed = write("K", seq=5)  # open: a killed run
    why = ledger.written_after(failed, log.model_copy(update={"writes": [own, killed]}))
    assert why is not None and "run K" in why

    # A run older than the log: anything that started after it counts.
    later = write("C", seq=9, open=False, started_at=started + timedelta(hours=1))
    earlier = write("D", seq=8, open=False, started_at=started - timedelta(hours=1))
    pruned = WriteLog(target=TARGET, last_seq=9, writes=[earlier, later])
    why = ledger.written_after(failed, pruned)
    assert why is not None and "run C" in why
    assert ledger.written_after(failed, pruned.model_copy(update={"writes": [earlier]})) is None


def node(kind: str, materialized: str, **config: object) -> SimpleNamespace:
    return SimpleNamespace(
        resource_type=kind,
        fqn=["shop", kind],
        config={"materialized": materialized, **config},
    )


def test_the_views_a_rebuild_drops() -> None:
    """table t <- view v <- view vv; t <- ephemeral e <- view ve; t <- table t2 <- view
    v2; a test on t; a late-binding view on Redshift."""
    nodes = {
        "model.t": node("model", "table"),
        "model.v": node("model", "view"),
        "model.vv": node("model", "view"),
        "model.e": node("model", "ephemeral"),
        "model.ve": node("model", "view"),
        "model.t2": node("model", "table"),
        "model.v2": node("model", "view"),
        "model.late": node("model", "view", bind=False),
        "test.t_not_null": node("test", "test"),
    }
    children = {
        "model.t": ["model.v", "model.e", "model.t2", "test.t_not_null", "model.late"],
        "model.v": ["model.vv"],
        "model.e": ["model.ve"],
        "model.t2": ["model.v2"],
    }
    dropped = dropped_views(["model.t"], children, nodes, "postgres")
    assert dropped == {"model.v", "model.vv", "model.ve", "model.late"}
    assert dropped_views(["model.t"], children, nodes, "redshift") == dropped - {"model.late"}
    manifest = SimpleNamespace(child_map=children, nodes=nodes)
    assert touched(["model.t"], manifest, "duckdb") == (["fqn:shop.model"], [])
    selectors, views = touched(["model.t"], manifest, "postgres")
    assert views == sorted(dropped) and selectors == ["fqn:shop.model"]
    # manifest.json's dicts work as dbt's objects do
    as_json = {uid: vars(n) for uid, n in nodes.items()}
    assert dropped_views(["model.t"], children, as_json, "postgres") == dropped


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 0:44 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
31 27 254:0 /srv/out /out rw,relatime - ext4 /dev/vda rw
32 27 254:0 /srv/my\\040data /my\\040data rw,relatime - ext4 /dev/vda rw
"""


def test_a_duckdb_file_on_the_containers_own_layer_goes_with_it() -> None:
    assert on_container_layer(Path("/opt/dbt-runner/project/dev.duckdb"), MOUNTINFO)
    assert not on_container_layer(Path("/out/dev.duckdb"), MOUNTINFO)  # a bind mount
    assert not on_container_layer(Path("/my data/dev.duckdb"), MOUNTINFO)
    host = MOUNTINFO.replace("overlay overlay", "ext4 /dev/vda")
    assert not on_container_layer(Path("/opt/dbt-runner/project/dev.duckdb"), host)
    target = Target(adapter="duckdb", location="/opt/dbt-runner/project/dev.duckdb")
    why = vanishes(target, Path("/tmp/dbt-runner"), MOUNTINFO)
    assert why is not None and "container's own filesystem" in why
    assert "DBT_RUNNER_WAREHOUSE__PATH" in why
    kept = Target(adapter="duckdb", location="/out/dev.duckdb")
    assert vanishes(kept, Path("/tmp/dbt-runner"), MOUNTINFO) is None
