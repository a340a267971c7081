
D
$00000000-0000-4000-8000-000000000019Ä¢ „°4annot-dispatcher*g-1ú
s-19
spec-tacos*annotator-1908BÈThree tacos al pastor are lined up side by side on a green plastic plate lined with waxed paper. Each taco is made of two small corn tortillas stacked on top of each other, and thin slices of red-orange pork that seems to be marinated in achiote are piled inside the tortillas. Small cubes of grilled pineapple sit on top of the pork, next to chopped white onion and coriander leaves. A wedge of lime lies at the edge of the plate beside the last taco. Behind the plate, a metal vertical spit holds a cone of layered pork with a whole pineapple fixed at its top, and a cook's hand holds a long knife against the meat.HÄ¢ „°4¢Å

spec-tacos"tacos al pastor*taco*tacos*	al pastor2en-US:foodB
	pineapple	on top ofporkB
porkinsidetortillaZg-1