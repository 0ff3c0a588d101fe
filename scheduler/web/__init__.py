"""HTTP layer: JSON API, pages, error mapping. Handlers parse, call one use case, render."""
