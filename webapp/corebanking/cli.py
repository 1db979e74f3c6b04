"""`flask --app webapp sandbox …`: fill the sandbox core banking (CONTRACT §3) and set up the demo."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.exc import IntegrityError

from .. import db
from . import loader

sandbox_cli = AppGroup("sandbox", help="The sandbox core banking.")


def _load(paths, also=None):
    """Load `paths` (and run `also(session)` in the same transaction); a refusal exits non-zero."""
    s = db.session()
    try:
        files = loader.read_all(paths, current_app.extensions["tenants"])
        summaries = loader.write(s, files)
        extra = also(s) if also else None
        s.commit()
    except loader.LoadError as e:
        s.rollback()
        raise click.ClickException("refused, nothing loaded:\n  " + "\n  ".join(e.problems)) from None
    except IntegrityError:
        s.rollback()
        raise click.ClickException("another load changed the same accounts at the same time; "
                                   "nothing loaded, run the command again") from None
    except BaseException:
        s.rollback()
        raise
    return summaries, extra


@sandbox_cli.command("load")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def load_cmd(files):
    """Load one or more sandbox files (FILE.json …) all-or-nothing; loading again updates in place."""
    summaries, _ = _load(files)
    for summary in summaries:
        click.echo(summary.line())


@sandbox_cli.command("demo-setup")
def demo_setup_cmd():
    """Load the demo customers of every union and register each union's demo app (idempotent)."""
    from .. import demo

    if not current_app.config["SANDBOX"]:
        raise click.ClickException("demo-setup is for sandbox mode only (set FLASK_SANDBOX=true)")
    summaries, clients = _load(demo.data_files(), also=demo.ensure_clients)
    for summary in summaries:
        click.echo(summary.line())
    for client in clients:
        click.echo(f"{client.tenant}: demo app {client.client_id} → {client.redirect_uris[0]}")
    click.echo(demo.instructions())
