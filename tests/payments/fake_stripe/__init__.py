"""The test-side fake Stripe: localstripe plus a stand-in for what localstripe lacks.

`standin.py` is the stand-in server (Connect accounts and links, idempotency, Connect params
and PaymentIntent fields localstripe rejects or omits, request recording); `servers.py` has the
pytest fixtures (`localstripe_url`, `stripe_standin`) and `make_payment_method`.
"""
