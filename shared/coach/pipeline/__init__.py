"""Pipeline stages: each joins the domain to the adapters for one handler, and is testable without Lambda."""
