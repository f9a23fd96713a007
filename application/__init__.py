"""Use cases: the `Ledger` application's commands, its queries (`LedgerQueries`) and answers
about the past (`TimeTravel`), intake and reservations, and the ports (Protocols) they need from
infrastructure. Imports the domain and `eventsourcing`; never a database, web or queue library."""
