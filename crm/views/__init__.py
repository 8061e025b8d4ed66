"""crm's pages: access (what a user may see), records, compose, setup and the timeline."""
