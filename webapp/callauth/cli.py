from flask.cli import AppGroup

telephony_cli = AppGroup("telephony", help="Telephony (incoming-call authentication).")
