"""`flask --app webapp db …`: Alembic migrations over the SQLModel metadata.

Alembic is imported by the commands, not with the app: a web worker never runs them, and Alembic
with Mako and Pygments is ~100 modules of its memory."""
from __future__ import annotations

import os

import click
from flask import current_app
from flask.cli import AppGroup

db_cli = AppGroup("db", help="Database schema (Alembic migrations in migrations/).")


def alembic_config():
    from alembic.config import Config

    root = os.path.dirname(current_app.root_path)
    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(root, "migrations"))
    cfg.attributes["engine"] = current_app.extensions["db_engine"]
    return cfg


def upgrade(revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(), revision)


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade_cmd(revision):
    """Bring the database to the newest schema (or REVISION)."""
    upgrade(revision)
    click.echo(f"database at {revision}")


@db_cli.command("downgrade")
@click.argument("revision")
def downgrade_cmd(revision):
    """Step the schema back to REVISION (e.g. -1, base)."""
    from alembic import command

    command.downgrade(alembic_config(), revision)


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def revision_cmd(message):
    """Write a new migration from the difference between the models and the database."""
    from alembic import command

    command.revision(alembic_config(), message=message, autogenerate=True)


@db_cli.command("check")
def check_cmd():
    """Fail when the models have changes no migration covers."""
    from alembic import command

    command.check(alembic_config())
    click.echo("models and migrations agree")
