"""The query service: answers every Query<Noun> API with no per-type code."""
