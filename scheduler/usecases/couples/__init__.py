"""The verified couple: held parties, SMS codes and the attempts spent on them."""
