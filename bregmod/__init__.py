"""bregmod: lifted Bregman formulations of neural networks.

Declare a network, compile it into the compact lifted form
N(u₀) = K u + c, M u = V prox_Ψ(W u + b), certify when the lifted inversion problem is
convex, and solve it exactly (CVXPY) or with first-order splitting solvers.
"""

__version__ = "0.1.0"
