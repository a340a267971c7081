
D
$00000000-0000-4000-8000-000000000012€¢Êã¡4annot-dispatcher*g-1‹
s-12
subj-torii*annotator-1208BûA magnificent vermilion torii stands at the foot of a stone staircase leading into a forest. The gate has two round pillars with black bases and two crossbeams: the upper one, the kasagi, is black and curves upward at both ends, and the lower one runs straight between the pillars just below it. A thick twisted straw rope, a shimenawa, is hung from the torii between the pillars, with white zigzag paper streamers hanging from it. A wooden plaque with black characters is fixed between the two crossbeams. Moss covers the lower steps of the staircase, and tall cedar trees rise behind the gate, giving the place a peaceful atmosphere.H€¢Êã¡4¢_

subj-torii"torii*
torii gate*torii gates2en-US:foodB
	shimenawa	hung fromtoriiZg-1