"""Schemathesis hooks for custody's API fuzz run (.ci/api_fuzz.py).

One extra check: an error answer never repeats a value the caller sent in the body or the
query string. custody's rule is that error messages name fields and rules, never values, so
a customer value typed into a bad request does not come back in the error, a log of errors,
or a proxy's cache.
"""

import json

import schemathesis


def _strings(value):
    """Every string inside a JSON-like value (keys excluded: they are field names)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _keys(value):
    """Every object key inside a JSON-like value (field names, which errors may name)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _keys(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _keys(item)


@schemathesis.check
def no_customer_value_in_errors(ctx, response, case):
    if response.status_code < 400:
        return None
    text = response.text or ""
    try:
        # Compare with the decoded body, so an escaped echo is caught too.
        text = text + "\n" + json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        pass
    sent = list(_strings(case.body)) if case.body is not None else []
    sent += list(_strings(case.query or {}))
    names = set(_keys(case.body)) | set((case.query or {}).keys())
    for value in sent:
        if value in names:
            continue  # the same text as a field name: an error may name the field
        # Short strings match by chance ("a", "id"); a value of six characters or more in
        # an error body is an echo.
        if len(value.strip()) >= 6 and value in text:
            raise AssertionError(
                f"the {response.status_code} answer repeats a value the request sent "
                f"({len(value)} characters)"
            )
    return None
