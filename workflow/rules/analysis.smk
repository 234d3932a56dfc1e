# placeholder until the analysis stage lands
def analysis_targets():
    return []
