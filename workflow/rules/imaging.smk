# placeholder until the imaging stage lands
def imaging_targets():
    return []
