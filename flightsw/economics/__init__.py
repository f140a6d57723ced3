"""Is compute in orbit cheaper? The cost model, study files, reproductions and charts.

* :mod:`.terms`: one formula per cost term (launch, launched power price, energy...).
* :mod:`.reproductions`: published studies recomputed from their own assumptions.
* :mod:`.study`: the STUDY.toml schema and loader.
* :mod:`.model`: a fleet in orbit vs the same compute on the ground, from the figures a
  lifetime simulation measured (:mod:`flightsw.sim.lifetime`).
* :mod:`.sensitivity`: tornado and break-even curve; :mod:`.charts` draws them.

See ``docs/economics.md``.
"""
