print("brig")
