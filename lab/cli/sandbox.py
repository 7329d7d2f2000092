"""``lab sandbox ...``: build sandbox images, list sandboxes, remove what dead processes left behind."""

from __future__ import annotations

from pathlib import Path

import typer

from lab.cli.options import StoreOption

sandbox_app = typer.Typer(no_args_is_help=True, help="Sandbox images and containers.")


@sandbox_app.command("build")
def build_cmd(
    names: list[str] = typer.Argument(None, help="Definitions under sandboxes/ to build (default: all)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even when up to date."),
) -> None:
    """Build sandbox images (tagged with a content hash; up-to-date ones are kept)."""
    from lab.sandbox.images import build

    for tag in build(names or None, force=force, log=lambda line: typer.echo(line, err=True)):
        typer.echo(tag)


@sandbox_app.command("gc")
def gc_cmd(
    everything: bool = typer.Option(False, "--all", help="Also remove sandboxes of live processes."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be removed."),
    store: Path = StoreOption,
) -> None:
    """Remove containers, volumes, snapshot images and local directories whose owning process is gone, and
    apply the snapshot store's retention (runs no longer in the store; past $LAB_SNAPSHOT_CAP, finished runs,
    oldest first)."""
    from lab.sandbox.gc import GcReport, gc_docker, gc_local
    from lab.sandbox.local import local_root

    if not dry_run:
        _gc_snapshots(store)
    report = gc_local(local_root(), everything=everything, dry_run=dry_run)
    try:
        from lab.sandbox.docker import docker_client

        client = docker_client()
    except Exception as e:  # noqa: BLE001 - no engine: only local directories to clean
        typer.echo(f"docker: skipped ({e})", err=True)
    else:
        d = gc_docker(client, everything=everything, dry_run=dry_run)
        report = GcReport(d.containers, d.volumes, d.images, report.local_dirs)
    verb = "would remove" if dry_run else "removed"
    for kind in ("containers", "volumes", "images", "local_dirs"):
        for name in getattr(report, kind):
            typer.echo(f"{verb} {kind[:-1].replace('_', ' ')} {name}")
    typer.echo(f"{verb} {report.total} item(s)", err=True)


def _gc_snapshots(store: Path | None) -> None:
    from lab.cli.options import open_store
    from lab.sandbox.snapshot_store import SnapshotStore
    from lab.traces.locations import default_store_path

    path = store or default_store_path()
    snaps = SnapshotStore.beside(path)
    if not path.exists() or not snaps.root.is_dir():
        return
    dropped, freed = snaps.gc(open_store(path))
    for rid in dropped:
        typer.echo(f"removed snapshots of run {rid}")
    typer.echo(f"snapshots: freed {freed} bytes; {snaps.size()} bytes in {snaps.root}", err=True)


@sandbox_app.command("ls")
def ls_cmd(store: Path = StoreOption) -> None:
    """List the snapshot store's size, sandbox images (built or stale) and running sandbox containers with their
    owners."""
    from lab.sandbox.docker import docker_client
    from lab.sandbox.gc import LABEL, OWNER, RUN
    from lab.sandbox.images import status
    from lab.sandbox.snapshot_store import SnapshotStore, snapshot_cap
    from lab.traces.locations import default_store_path
    from lab.traces.store import owner_alive

    snaps = SnapshotStore.beside(store or default_store_path())
    typer.echo(f"snapshots  {snaps.root}  {snaps.size()} bytes of {snapshot_cap()} (${'LAB_SNAPSHOT_CAP'}), "
               f"{len(snaps.runs())} run(s)")
    client = docker_client()
    for st in status(client):
        state = "built" if st.built else "NOT BUILT"
        typer.echo(f"image      {st.name:<16} {st.tag or '-':<40} {state}{'  ' + st.note if st.note else ''}")
    for c in client.api.containers(all=True, filters={"label": LABEL}):
        labels, name = c.get("Labels") or {}, (c.get("Names") or ["?"])[0].lstrip("/")
        owner = labels.get(OWNER, "")
        alive = "" if owner_alive(owner) else "  (owner gone: `lab sandbox gc` removes it)"
        typer.echo(f"container  {name:<32} {c.get('State', '?'):<8} run={labels.get(RUN) or '-'} owner={owner}{alive}")


def register(app: typer.Typer) -> None:
    """Add the ``lab sandbox`` commands to the app."""
    app.add_typer(sandbox_app, name="sandbox")
