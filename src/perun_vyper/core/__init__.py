"""The protocol core: parameters, states, EIP-712, signatures, the update rules and the adjudicator call
arguments. Pure: no store, no chain connection, no clock."""
