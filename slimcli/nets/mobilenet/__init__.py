"""MobileNet v2, v3 and EdgeTPU: one generic builder fed with conv defs (data)."""
