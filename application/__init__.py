"""Use cases: the `Ledger` application and its queries, and the ports (Protocols) they need from
infrastructure. Imports the domain and `eventsourcing`; never a database, web or queue library."""
