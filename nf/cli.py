"""The ``nf`` command: serve, check-config, db start/build, seed-demo, demo."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from nf.config import ServerSettings, Settings
from nf.errors import ConfigError

cli = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="MVNO policy and charging core (5G CHF + PCF).")
db_cli = typer.Typer(no_args_is_help=True, help="The embedded database (SecantusDB).")
cli.add_typer(db_cli, name="db")
catalog_cli = typer.Typer(no_args_is_help=True, help="The offer catalogue.")
cli.add_typer(catalog_cli, name="catalog")
from nf.reports.cli import edr_cli, report_cli  # noqa: E402

cli.add_typer(edr_cli, name="edr")
cli.add_typer(report_cli, name="report")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")]


def _load(config: Path | None, **overrides: object) -> Settings:
    try:
        settings = Settings.load(config, **overrides)
        if settings.oauth2.required and settings.oauth2.jwks_file is not None:
            from nf.security.keys import load_file

            load_file(settings.oauth2.jwks_file)  # a bad key file stops the NF here
        _check_client_cas(settings)
        return settings
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def _check_client_cas(settings: Settings) -> None:
    """A client CA bundle (mTLS) that cannot be used stops the NF before anything starts."""
    import ssl

    bundles = [("server.tls_client_ca_file", settings.server.tls_client_ca_file)]
    bundles += [(f"networks[{n.id}].tls_client_ca_file", n.tls_client_ca_file)
                for n in settings.networks]
    for key, path in bundles:
        if path is None:
            continue
        try:
            ssl.create_default_context(cafile=path)
        except OSError as e:  # ssl.SSLError included
            why = e.strerror or str(e)
            raise ConfigError(f"{key}: {path} is not a usable CA bundle: {why}") from None


@cli.command("check-config")
def check_config(path: Annotated[Path, typer.Argument(help="YAML config file")]) -> None:
    """Validate a configuration file (and the environment) without starting anything."""
    s = _load(path)
    typer.echo(f"ok: {path} ({len(s.networks)} host networks)")


@catalog_cli.command("check")
def catalog_check(directory: Annotated[Path, typer.Argument(help="catalogue directory")]) -> None:
    """Validate a catalogue directory (one YAML file per brand) without starting anything."""
    from nf.catalog import CatalogError, load_catalog
    from nf.subnotify.templates import TemplateError, load_dir

    try:
        cat = load_catalog(directory)
        texts = load_dir(directory, set(cat.brands))
    except (CatalogError, TemplateError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"ok: {directory} ({len(cat.brands)} brands, {len(cat)} offers, "
               f"notice texts for {len(texts)} brands)")


@cli.command()
def serve(
    config: ConfigOpt = None,
    server: Annotated[str | None, typer.Option(help="granian (default) or hypercorn")] = None,
    workers: Annotated[int | None, typer.Option(help="SBI worker processes")] = None,
) -> None:
    """Serve the SBI (h2c or TLS) and OAM ports, and Diameter with diameter.enabled, until
    SIGTERM / Ctrl-C."""
    from nf.sbi.runner import serve as run_servers

    env = dict(os.environ)
    if config is not None:
        env["NF_CONFIG"] = str(config.resolve())
    if server is not None:
        if server not in ("granian", "hypercorn"):
            typer.echo("error: --server must be granian or hypercorn", err=True)
            raise typer.Exit(2)
        env["NF_SERVER__SERVER"] = server
    if workers is not None:
        env["NF_SERVER__WORKERS"] = str(workers)
    os.environ.update(env)
    settings = _load(None)
    raise typer.Exit(run_servers(settings, env))


@db_cli.command("build")
def db_build() -> None:
    """Build SecantusDB's Rust server once with cargo (else the Python server is used).

    The build output goes to a log file under the cache directory, named in the message.
    """
    from nf.store import embedded

    ok, msg = embedded.build_rust()
    typer.echo(msg)
    raise typer.Exit(0 if ok else 1)


def _wait_for_signal() -> None:
    got: list[int] = []

    def _h(signum: int, _f: object) -> None:
        got.append(signum)

    signal.signal(signal.SIGTERM, _h)
    signal.signal(signal.SIGINT, _h)
    while not got:
        signal.pause()


@db_cli.command("start")
def db_start(
    data: Annotated[Path, typer.Option(help="storage directory")] = Path(".nf-data/db"),
    host: str = "127.0.0.1",
    port: int = 27017,
    prefer: Annotated[str, typer.Option(help="auto, rust or python")] = "auto",
) -> None:
    """Run the embedded database in the foreground until Ctrl-C."""
    from nf.store import embedded

    if prefer not in ("auto", "rust", "python"):
        raise typer.BadParameter("prefer must be auto, rust or python")
    db = embedded.start(data, host=host, port=port, prefer=prefer)
    typer.echo(f"SecantusDB ({db.kind} server) at {db.uri}, data in {data}")
    try:
        _wait_for_signal()
    finally:
        db.stop()


@cli.command("seed-demo")
def seed_demo(config: ConfigOpt = None) -> None:
    """Load the demo brands, host networks, offers and subscribers (idempotent)."""
    from nf.demo import seed

    settings = _load(config)
    counts = asyncio.run(seed(settings))
    typer.echo("seeded: " + ", ".join(f"{k}={v}" for k, v in counts.items()))


def listening(s: ServerSettings) -> str:
    """Where the servers listen, and what the SBI port speaks, as the start-up line says."""
    if s.tls:
        sbi = "HTTP/2 over TLS, ALPN h2" + (" and http/1.1" if s.sbi_http1 else "")
    else:
        sbi = "h2c" + (" and HTTP/1.1" if s.sbi_http1 else "")
    scheme = "https" if s.tls else "http"
    return (f"SBI ({sbi}) on {scheme}://{s.sbi_host}:{s.sbi_port}, "
            f"OAM on {scheme}://{s.oam_host}:{s.oam_port}")


@cli.command()
def demo(
    data: Annotated[Path, typer.Option(help="storage directory", envvar="NF_DEMO_DATA")
                    ] = Path(".nf-data"),
    db_port: Annotated[int, typer.Option(
        help="port of the embedded database (0: any free port)", envvar="NF_DEMO_DB_PORT",
        min=0, max=65535)] = 27018,
    sbi_host: Annotated[str | None, typer.Option(help="SBI address [config: 127.0.0.1]")
                        ] = None,
    sbi_port: Annotated[int | None, typer.Option(help="SBI port [config: 8000]",
                                                 min=0, max=65535)] = None,
    oam_host: Annotated[str | None, typer.Option(help="OAM address [config: 127.0.0.1]")
                        ] = None,
    oam_port: Annotated[int | None, typer.Option(help="OAM port [config: 8080]",
                                                 min=0, max=65535)] = None,
    server: Annotated[str | None, typer.Option(help="granian (default) or hypercorn")] = None,
) -> None:
    """What `make run` does: embedded database + demo dataset + both servers.

    Addresses and ports also follow the environment (NF_SERVER__SBI_PORT, ...).
    """
    from nf.demo import DEMO_CONFIG, seed
    from nf.sbi.runner import EXIT_PORT_IN_USE, PortInUse, claim_check
    from nf.sbi.runner import serve as run_servers
    from nf.store import embedded

    overrides = {"NF_SERVER__SBI_HOST": sbi_host, "NF_SERVER__SBI_PORT": sbi_port,
                 "NF_SERVER__OAM_HOST": oam_host, "NF_SERVER__OAM_PORT": oam_port,
                 "NF_SERVER__SERVER": server}
    env = dict(os.environ)
    env.setdefault("NF_CONFIG", str(DEMO_CONFIG))
    env.update({k: str(v) for k, v in overrides.items() if v is not None})
    os.environ.update(env)
    first = _load(None)  # a bad option or variable stops here, before anything starts
    try:  # and so does a port in use (``nf serve`` checks again)
        claim_check("SBI", first.server.sbi_host, first.server.sbi_port)
        claim_check("OAM", first.server.oam_host, first.server.oam_port)
    except PortInUse as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(EXIT_PORT_IN_USE) from None
    code = 1
    try:
        db = embedded.start(data / "db", port=db_port, log=data / "db.log")
    except RuntimeError as e:
        typer.echo(f"error: the embedded database did not start: {e} (log: {data / 'db.log'})",
                   err=True)
        raise typer.Exit(1) from None
    typer.echo(f"embedded database: SecantusDB {db.kind} server at {db.uri}")
    try:
        env["NF_MONGODB_URI"] = db.uri
        os.environ.update(env)
        settings = _load(None)
        counts = asyncio.run(seed(settings))
        typer.echo("demo data: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
        typer.echo(f"{listening(settings.server)}; Ctrl-C stops")
        sys.stdout.flush()
        code = run_servers(settings, env)
    except KeyboardInterrupt:
        code = 0
    finally:
        db.stop()
        typer.echo(f"stopped (embedded database stopped, data kept in {data})")
    raise typer.Exit(code)


Mode = Literal["serve"]


def main() -> None:
    sys.exit(cli())


if __name__ == "__main__":
    main()
