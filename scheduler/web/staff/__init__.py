"""The staff side: sign-in (pages and API), guards and office scoping, staff pages.
The app's list of handlers is in ``scheduler.web.staff.routes``."""
