# The two commands of the README's quick start, plus the pieces they are made of.
.PHONY: demo test test-unit test-e2e screens setup clean

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

screens: setup   ## the README's pictures: phone screenshots of every screen and the main errors, both unions, into docs/screens/
	E2E_SCREENS=1 .venv/bin/python -m pytest e2e/test_phone_ergonomics.py e2e/test_account_customer.py \
		e2e/test_call.py e2e/test_cancel.py e2e/test_staff.py -k "not nojs and not https" -q

clean:           ## remove the venv, build/ (reports, static copies) and screenshots (keeps instance/ data)
	rm -rf .venv build e2e/artifacts
