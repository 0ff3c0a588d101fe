"""The verified couple: held parties, SMS codes and the attempts spent on them, and
texting both partners about their appointment."""
