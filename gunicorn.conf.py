# Read by gunicorn from the working directory whatever its command line (Procfile, make demo, tests).
# The access log never carries a token, code or secret that a client put in a URL (webapp/accesslog.py).
logger_class = "webapp.accesslog.RedactingLogger"
