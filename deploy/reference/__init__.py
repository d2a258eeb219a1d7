"""The float reference run: a NIR graph stepped in discrete time under explicit semantics."""
