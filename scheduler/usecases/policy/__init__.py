"""The office's rules: policies, the law's rule sets, no-show bans and abuse limits."""
