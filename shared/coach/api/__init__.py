"""The critique API: request and response models, the critique service, errors and the request gate.

`functions/critique/app.py` holds the resolver and routes; everything they call lives here.
"""
