"""Recorded sessions: the MCAP writer/reader (:mod:`.mcap`), how items are stored
(:mod:`.schema`), media files assembled into a timeline (:mod:`.assemble`) and the latency
report of a session (:mod:`.report`)."""
