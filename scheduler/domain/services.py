"""The services a registry office offers (docs: DESIGN "The domain in one page"):
one list for the domain, the use cases, the pages and the demo seed."""

from __future__ import annotations

SERVICES = ("marriage", "divorce", "reissue", "ceremony", "counselling")
