from flask.cli import AppGroup

sandbox_cli = AppGroup("sandbox", help="The sandbox core banking.")
