# placeholder until the simulation stage lands
def simulation_targets():
    return []
