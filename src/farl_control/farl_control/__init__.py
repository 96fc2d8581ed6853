"""FARL control: the Franka bridge on franky and the hard safety limits beneath every learned part."""
