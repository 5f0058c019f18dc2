"""The ordered feature list the model, the store and the service agree on."""

FEATURES: tuple[str, ...] = ("Time", *(f"V{i}" for i in range(1, 29)), "Amount")
LABEL = "Class"
COLUMNS: tuple[str, ...] = (*FEATURES, LABEL)
N_FEATURES = len(FEATURES)
