# The two commands of the README's quick start, plus the pieces they are made of.
.PHONY: demo test test-unit test-e2e setup clean

demo:            ## set up, migrate, load the demo data and serve on http://127.0.0.1:5000
	scripts/demo

test:            ## set up (incl. chromium) and run every test: tests/ on SQLite, on PostgreSQL + Redis, then e2e/
	scripts/test

setup:           ## only the set-up (.venv, chromium, fonts)
	scripts/bootstrap --browser

test-unit:       ## only tests/, on SQLite + memory:// (no browser, no PostgreSQL or Redis needed)
	scripts/bootstrap
	.venv/bin/python -m pytest tests

test-e2e: setup  ## only the browser tests
	.venv/bin/python -m pytest e2e

clean:           ## remove the venv, build/ (reports, static copies) and screenshots (keeps instance/ data)
	rm -rf .venv build e2e/artifacts
